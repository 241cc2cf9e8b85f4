// reciprocal square root; rsqrt is a CUDA intrinsic, the numpy backend maps it.
rsqrt(x)
