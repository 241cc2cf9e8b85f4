// Adadelta (Zeiler 2012, Algorithm 1; PyTorch's Adadelta). Unlike TF.js, the step's
// denominator uses the accumulator AFTER this step's update, as the paper does.
// sq: running mean of g^2; dx: running mean of squared steps; u: this step (a temporary).
sq = rho * sq + (T(1) - rho) * g * g;
u = sqrt(dx + eps) / sqrt(sq + eps) * g;
dx = rho * dx + (T(1) - rho) * u * u;
w = w - lr * u;
