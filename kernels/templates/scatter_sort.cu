// Scatter-add, first kernel: a stable counting sort of each batch row's $count indices into
// $buckets buckets (bucket $buckets collects the indices outside [0, $buckets), which add
// nothing). Block b sorts row b in three passes over it, 256 indices at a time:
//   1. count: each thread finds, among the 256 indices of the pass, how many equal ones come
//      before its own (rank) and whether its own is the last of them; the last one adds
//      rank + 1 to its bucket's count (one writer per bucket per pass, ordered by barriers);
//   2. starts: an exclusive prefix sum of the counts (a Hillis-Steele scan of 256 at a time,
//      carried across), so bucket v's positions are [starts[v], starts[v + 1]);
//   3. place: each index goes to starts of its bucket + the indices of that bucket placed in
//      earlier passes + its rank: perm lists each bucket's positions k in increasing order.
// No atomics: the order is fixed by the indices alone, so the second kernel's sums (each
// bucket's values added in increasing k) are bitwise repeatable. Work is O($count x 256) per
// row for the ranks plus O($buckets) for the scan.
extern "C" __global__ void __launch_bounds__(256) $name($params) {
  __shared__ int gg_sort_v[256];
  __shared__ int gg_sort_s[256];
  for (idx_t b = blockIdx.x; b < (idx_t)$batches; b += gridDim.x) {
    const idx_t row = b * (idx_t)($buckets + 2);
    for (idx_t j = threadIdx.x; j < (idx_t)($buckets + 2); j += blockDim.x) starts[row + j] = 0;
    __syncthreads();
    for (int pass = 0; pass < 2; ++pass) {
      for (idx_t base = 0; base < (idx_t)$count; base += 256) {
        const idx_t k = base + threadIdx.x;
        int v = -1;
        if (k < (idx_t)$count) {
          const int raw = $index[b * (idx_t)$count + k];
          v = (raw >= 0 && raw < $buckets) ? raw : $buckets;
        }
        gg_sort_v[threadIdx.x] = v;
        __syncthreads();
        int rank = 0;
        bool last = true;
        for (int t = 0; t < 256; ++t) {
          const int u = gg_sort_v[t];
          if (t < (int)threadIdx.x) rank += (u == v);
          else if (t > (int)threadIdx.x && u == v) last = false;
        }
        if (pass == 0) {
          if (v >= 0 && last) starts[row + v + 1] = starts[row + v + 1] + rank + 1;
        } else {
          const int pos = v >= 0 ? cursor[row + v] + rank : 0;
          __syncthreads();   // every thread has its bucket's cursor before the last one moves it
          if (v >= 0) {
            perm[b * (idx_t)$count + pos] = (int)k;
            if (last) cursor[row + v] = pos + 1;
          }
        }
        __syncthreads();
      }
      if (pass == 1) break;
      int carry = 0;
      for (idx_t base = 0; base < (idx_t)($buckets + 2); base += 256) {
        const idx_t j = base + threadIdx.x;
        gg_sort_s[threadIdx.x] = j < (idx_t)($buckets + 2) ? starts[row + j] : 0;
        __syncthreads();
        for (int s = 1; s < 256; s <<= 1) {
          const int x = gg_sort_s[threadIdx.x] + (threadIdx.x >= s ? gg_sort_s[threadIdx.x - s] : 0);
          __syncthreads();
          gg_sort_s[threadIdx.x] = x;
          __syncthreads();
        }
        const int x = carry + gg_sort_s[threadIdx.x];
        if (j < (idx_t)($buckets + 2)) {
          starts[row + j] = x;
          cursor[row + j] = x;
        }
        carry += gg_sort_s[255];
        __syncthreads();
      }
    }
  }
}
