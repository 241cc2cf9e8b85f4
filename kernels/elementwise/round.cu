// Nearest integer, halves to even (TF.js round: 0.5 -> 0, 1.5 -> 2, -2.5 -> -2).
rint(x)
