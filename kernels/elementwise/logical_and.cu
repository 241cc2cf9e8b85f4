x & y
