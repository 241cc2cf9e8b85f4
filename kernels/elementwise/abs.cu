// |x|: CUDA's abs overloads (abs.f32, abs.f64, abs.s32); numpy's absolute.
abs(x)
