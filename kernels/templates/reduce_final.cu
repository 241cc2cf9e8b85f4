// Reduction group, stage 2: one block per output combines that output's CHUNKS partials.
extern "C" __global__ void __launch_bounds__(256) $name($params) {
$shared
  for (idx_t o = blockIdx.x; o < (idx_t)$outputs; o += gridDim.x) {
$init
    for (idx_t r = threadIdx.x; r < (idx_t)$chunks; r += blockDim.x) {
$accumulate
    }
$tree
    __syncthreads();
  }
}
