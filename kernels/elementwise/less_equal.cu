x <= y
