exp(x)
