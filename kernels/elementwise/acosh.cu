acosh(x)
