// Nesterov momentum (TF.js MomentumOptimizer, useNesterov = true; PyTorch's nesterov form):
// step along the gradient plus the look-ahead m * a.
a = m * a + g;
w = w - lr * (g + m * a);
