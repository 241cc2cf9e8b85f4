x | y
