cos(x)
