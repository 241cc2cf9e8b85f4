x / y
