// Smallest integer not below x (TF.js ceil); its gradient is zero.
ceil(x)
