// TF.js's floorDiv: floor(x / y) with the quotient taken in double, as TF.js's JavaScript
// numbers (exact for int32). An int32 division by zero gives 0 (TF.js stores +-Infinity and
// NaN in an Int32Array as 0); T(0.5) == T(0) holds only for integer T.
where((y == T(0)) & (T(0.5) == T(0)), T(0), T(floor(double(x) / double(where((y == T(0)) & (T(0.5) == T(0)), T(1), y)))))
