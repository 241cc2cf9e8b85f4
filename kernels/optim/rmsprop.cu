// RMSProp (Tieleman & Hinton 2012) with momentum, as TF.js's RMSPropOptimizer (centered =
// false): s is the running mean of g^2 (decay d), mom the momentum-accumulated step.
s = d * s + (T(1) - d) * g * g;
mom = mu * mom + lr * g / sqrt(s + eps);
w = w - mom;
