x != y
