tan(x)
