// where keeps NaN (NaN < 0 is false) and gives 0 for -0 the sign it had.
where(x < T(0), -x, x)
