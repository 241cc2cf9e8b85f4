// NaN in either operand propagates (numpy, JAX).
where((x > y) | (x != x), x, y)
