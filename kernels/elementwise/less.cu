x < y
