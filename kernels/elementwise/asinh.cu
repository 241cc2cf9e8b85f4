asinh(x)
