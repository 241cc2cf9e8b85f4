where(c, x, y)
