x - y
