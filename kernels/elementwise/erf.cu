erf(x)
