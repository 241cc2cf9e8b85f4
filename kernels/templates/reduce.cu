// Reduction group, stage 1: block b reduces chunk (b % CHUNKS) of the reduced range of output
// (b / CHUNKS); sibling elementwise outputs over the same iteration space are written on the
// way. The order of every sum is fixed by the sizes alone, so results are bitwise repeatable.
extern "C" __global__ void __launch_bounds__(256) $name($params) {
$shared
  for (idx_t b = blockIdx.x; b < (idx_t)$blocks; b += gridDim.x) {
    const idx_t o = b / $chunks;
    const idx_t r_begin = (b - o * $chunks) * (idx_t)$chunk;
    const idx_t r_end = min(r_begin + (idx_t)$chunk, (idx_t)$reduced);
$init
    for (idx_t r = r_begin + threadIdx.x; r < r_end; r += blockDim.x) {
$body
$accumulate
$stores
    }
$tree
    __syncthreads();
  }
}
