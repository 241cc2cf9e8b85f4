sin(x)
