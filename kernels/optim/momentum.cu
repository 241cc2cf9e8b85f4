// Heavy-ball momentum (TF.js MomentumOptimizer, useNesterov = false):
// the accumulator a sums past gradients, decayed by m.
a = m * a + g;
w = w - lr * a;
