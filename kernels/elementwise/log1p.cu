log1p(x)
