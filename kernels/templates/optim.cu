// Multi-tensor update: ONE launch updates every variable of one dtype in place, reading each
// parameter, gradient and state element once and writing each once.
// meta holds $n_roles tables of n_tensors pointers (one table per role: $roles), then
// n_tensors + 1 offsets: the prefix sums of the tensors' sizes. The flat index space
// [0, total) is the tensors laid end to end; a thread grid-strides over it, finds the tensor
// of its first element by binary search and then walks forward, as its index only grows.
typedef $ctype T;
extern "C" __global__ void __launch_bounds__($block) $name(
    const long long* __restrict__ meta, const int n_tensors, const long long total$scalar_params) {
$tables
  const long long* gg_offsets = meta + $n_roles * (long long)n_tensors;
  const long long gg_stride = (long long)blockDim.x * gridDim.x;
  long long gg_i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (gg_i >= total) return;
  int gg_k = 0, gg_hi = n_tensors - 1;  // the last tensor whose offset is <= gg_i
  while (gg_k < gg_hi) {
    const int gg_mid = (gg_k + gg_hi + 1) / 2;
    if (gg_offsets[gg_mid] <= gg_i) gg_k = gg_mid; else gg_hi = gg_mid - 1;
  }
  for (; gg_i < total; gg_i += gg_stride) {
    while (gg_offsets[gg_k + 1] <= gg_i) ++gg_k;
    const long long gg_j = gg_i - gg_offsets[gg_k];
$loads
$body
$stores
  }
}
