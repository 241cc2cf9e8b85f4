// Adagrad (Duchi et al. 2011; TF.js AdagradOptimizer): acc starts at
// initialAccumulatorValue and sums squared gradients; eps sits inside the root, as in TF.js.
acc = acc + g * g;
w = w - lr * g / sqrt(acc + eps);
