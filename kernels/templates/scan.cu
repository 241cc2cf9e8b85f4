// Scan group ($what): block b takes chunk (b % $chunks) of line (b / $chunks), a line being the
// positions along the scanned axis at one (outer, inner) pair. It walks its chunk 256 elements
// at a time: a Hillis-Steele scan of the 256 in shared memory, combined with the running total
// (`carry`) of everything before them in scan order. The order of every combination is fixed by
// the sizes alone, so results are bitwise repeatable (no atomics).
extern "C" __global__ void __launch_bounds__(256) $name($params) {
  __shared__ $acc_t gg_scan[256];
  for (idx_t b = blockIdx.x; b < (idx_t)$blocks; b += gridDim.x) {
    const idx_t line = b / $chunks;
    const idx_t chunk = b - line * $chunks;
    const idx_t o = line / $inner;
    const idx_t c = line - o * $inner;
    const idx_t j_begin = chunk * (idx_t)$chunk;
    const idx_t j_end = min(j_begin + (idx_t)$chunk, (idx_t)$length);
$carry
    for (idx_t base = j_begin; base < j_end; base += 256) {
      const idx_t j = base + threadIdx.x;
      const idx_t n = $position;
      $acc_t v = $identity;
      if (j < j_end) {
$body
        v = $value;
      }
      gg_scan[threadIdx.x] = v;
      __syncthreads();
      for (int s = 1; s < 256; s <<= 1) {
        const $acc_t prev = threadIdx.x >= s ? gg_scan[threadIdx.x - s] : $identity;
        __syncthreads();
        gg_scan[threadIdx.x] = $combine_prev;
        __syncthreads();
      }
$store
      carry = $combine_carry;
      __syncthreads();
    }
$finish
  }
}
