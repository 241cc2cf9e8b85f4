// TF.js's mod (cpu kernel, written the same way): the remainder takes the divisor's sign, so
// floor(x / y) * y + mod(x, y) = x. fmod is the truncated remainder (int32: prelude.cu, 0
// where y = 0, as TF.js's Int32Array stores NaN).
where(((x < T(0)) & (y < T(0))) | ((x >= T(0)) & (y >= T(0))), fmod(x, y), fmod(fmod(x, y) + y, y))
