// Plain gradient descent (TF.js SGDOptimizer): w -= lr * g.
w = w - lr * g;
