atanh(x)
