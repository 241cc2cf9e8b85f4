// Adamax (Kingma & Ba 2015, section 7; TF.js AdamaxOptimizer). The host passes
// lr = learningRate / (1 + decay * (t - 1)) and bc1 = 1 - b1^t. u is the exponentially
// weighted infinity norm: max(b2 * u, |g|), NaN propagating as tf.maximum does.
m = b1 * m + (T(1) - b1) * g;
d = b2 * u;
a = abs(g);
u = where((d > a) | (d != d), d, a);
w = w - lr / bc1 * m / (u + eps);
