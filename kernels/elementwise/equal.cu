x == y
