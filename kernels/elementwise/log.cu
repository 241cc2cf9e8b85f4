log(x)
