x >= y
