// Centered RMSProp (Graves 2013, eqs. 38-41): the root of the gradient's running variance
// s - mg^2, with eps ADDED inside the root as in the paper (TF.js subtracts it, which gives
// NaN for small gradients; PyTorch adds eps outside the root, a difference of order eps).
s = d * s + (T(1) - d) * g * g;
mg = d * mg + (T(1) - d) * g;
mom = mu * mom + lr * g / sqrt(s - mg * mg + eps);
w = w - mom;
