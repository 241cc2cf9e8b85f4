// AdamW (Loshchilov & Hutter 2019; PyTorch's AdamW): Adam plus weight decay decoupled from
// the gradient, w *= 1 - lr * wd, applied to the weights before this step's Adam update.
m = b1 * m + (T(1) - b1) * g;
v = b2 * v + (T(1) - b2) * g * g;
w = w * (T(1) - lr * wd) - lr * (m / bc1) / (sqrt(v / bc2) + eps);
