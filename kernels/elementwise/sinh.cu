sinh(x)
