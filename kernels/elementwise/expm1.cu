expm1(x)
