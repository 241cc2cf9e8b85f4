// NaN stays NaN, as numpy's sign.
where(x != x, x, where(x > T(0), T(1), where(x < T(0), T(-1), T(0))))
