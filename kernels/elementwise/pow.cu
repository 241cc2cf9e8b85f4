pow(x, y)
