// Elementwise group: each thread computes every output at its flat indices (grid-stride).
extern "C" __global__ void __launch_bounds__(256) $name($params) {
  for (idx_t i = (idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < (idx_t)$size;
       i += (idx_t)blockDim.x * gridDim.x) {
$body
$stores
  }
}
