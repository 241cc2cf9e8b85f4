atan(x)
