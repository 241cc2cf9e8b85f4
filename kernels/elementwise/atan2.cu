atan2(x, y)
