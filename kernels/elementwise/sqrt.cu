sqrt(x)
