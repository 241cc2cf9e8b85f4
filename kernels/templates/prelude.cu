// Shared by every generated kernel: the names the snippet grammar uses beyond C++ itself.
template <typename C, typename T>
__device__ __forceinline__ T where(C c, T a, T b) { return c ? a : b; }
// argmax: NaN counts as the largest value and ties go to the first index, as in numpy.
template <typename T, typename I>
__device__ __forceinline__ bool argmax_wins(T a, I ia, T b, I ib) {
  const bool a_nan = a != a, b_nan = b != b;
  if (a_nan || b_nan) return b_nan && (!a_nan || ib < ia);
  return b > a || (b == a && ib < ia);
}
// The truncated remainder of integers, for snippets that call fmod on any T (mod.cu): 0 where
// b = 0 (and for INT_MIN % -1), as numpy's fmod; floats use CUDA's own fmod.
__device__ __forceinline__ int fmod(int a, int b) { return (b == 0 || b == -1) ? 0 : a % b; }
