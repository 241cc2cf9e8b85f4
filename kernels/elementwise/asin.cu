asin(x)
