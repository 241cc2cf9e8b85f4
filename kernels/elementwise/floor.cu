// Largest integer not above x (TF.js floor); its gradient is zero.
floor(x)
