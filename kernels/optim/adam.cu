// Adam (Kingma & Ba 2015; TF.js AdamOptimizer). The host passes the bias corrections
// bc1 = 1 - b1^t and bc2 = 1 - b2^t for this variable's step t, so the kernel is the
// same every step.
m = b1 * m + (T(1) - b1) * g;
v = b2 * v + (T(1) - b2) * g * g;
w = w - lr * (m / bc1) / (sqrt(v / bc2) + eps);
