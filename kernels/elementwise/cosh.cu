cosh(x)
