acos(x)
