// Included before every generated kernel that the CPU emulator compiles (emulated.py).
// CUDA's built-in variables are globals of the emulator runtime (emulator_runtime.cpp), which
// runs each block's threads as fibers and switches fiber at __syncthreads(). The emulator
// rewrites `__shared__ T name[N];` into a gg_shared and indexed pointer parameters into
// gg_gptr, whose element references report every access to the runtime's checker. Kept small
// and free of heavy headers: it is compiled once per kernel.
#pragma once
#include <cmath>
#include <cstring>
#include <algorithm>
using namespace std;

struct gg_dim3 { unsigned x, y, z; };

extern "C" {
extern gg_dim3 gg_blockIdx, gg_threadIdx, gg_blockDim, gg_gridDim;
void gg_syncthreads(int line);
// Shared arrays: the runtime keeps one shadow per array per block execution.
void* gg_shared_enter(void* values, long long bytes, long long n, const char* name);
void gg_shared_range(const char* name, long long i, long long n, int line);
void gg_shared_read(void* shadow, long long i, int line);
void gg_shared_write(void* shadow, long long i, int line);
// Pointer parameters: registered per launch with their extent.
int gg_global_param(const char* name, long long n, int writable);
void gg_global_range(int param, long long i, int line);
void gg_global_write(int param, long long i, int line);
}

#define threadIdx gg_threadIdx
#define blockIdx gg_blockIdx
#define blockDim gg_blockDim
#define gridDim gg_gridDim
#define __syncthreads() gg_syncthreads(__LINE__)
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(x)
#define __restrict__

static inline double __longlong_as_double(long long v) { double d; memcpy(&d, &v, 8); return d; }
static inline float rsqrt(float x) { return 1.0f / sqrt(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }

// An element of a shared array: converting it reads, assigning it writes; both are recorded.
// Copy-assignment is an element copy (a = b), never a rebinding of the reference.
template <typename T> struct gg_sref {
  T* v; void* shadow; long long i; int line;
  operator T() const { if (shadow) gg_shared_read(shadow, i, line); return *v; }
  gg_sref& operator=(T x) { if (shadow) gg_shared_write(shadow, i, line); *v = x; return *this; }
  gg_sref& operator=(const gg_sref& o) { return *this = (T)o; }
};

template <typename T, long long N> struct gg_shared {
  T v[N];
  const char* name;
  explicit gg_shared(const char* n) : name(n) {}
  gg_sref<T> at(long long i, int line) {
    void* shadow = gg_shared_enter(v, sizeof v, N, name);
    if (i >= 0 && i < N) return {v + i, shadow, i, line};
    gg_shared_range(name, i, N, line);
    static T dummy;  // an out-of-range access is reported, then lands here, not in memory
    return {&dummy, nullptr, i, line};
  }
  struct at_line { gg_shared* s; int line; gg_sref<T> operator[](long long i) const { return s->at(i, line); } };
  at_line operator()(int line) { return {this, line}; }   // name(__LINE__)[i], as rewritten
  gg_sref<T> operator[](long long i) { return at(i, 0); }
};

// An element of a writable pointer parameter: writes are recorded (who wrote each element).
template <typename T> struct gg_gref {
  T* p; int param; long long i; int line;
  operator T() const { return *p; }
  gg_gref& operator=(T x) { if (param >= 0) gg_global_write(param, i, line); *p = x; return *this; }
  gg_gref& operator=(const gg_gref& o) { return *this = (T)o; }
};

template <typename T> struct gg_gptr {
  T* p; long long n; int param;
  gg_gref<T> at(long long i, int line) const {
    if (i >= 0 && i < n) return {p + i, param, i, line};
    gg_global_range(param, i, line);
    static T dummy;
    return {&dummy, -1, i, line};
  }
  struct at_line { const gg_gptr* g; int line; gg_gref<T> operator[](long long i) const { return g->at(i, line); } };
  at_line operator()(int line) const { return {this, line}; }
  gg_gref<T> operator[](long long i) const { return at(i, 0); }
};

template <typename T> struct gg_gptr<const T> {
  const T* p; long long n; int param;
  const T& at(long long i, int line) const {
    if (i >= 0 && i < n) return p[i];
    gg_global_range(param, i, line);
    static const T dummy{};
    return dummy;
  }
  struct at_line { const gg_gptr* g; int line; const T& operator[](long long i) const { return g->at(i, line); } };
  at_line operator()(int line) const { return {this, line}; }
  const T& operator[](long long i) const { return at(i, 0); }
};

// A scalar kernel argument: the host fills both fields; the kernel's type picks one.
struct gg_scalar { double f; long long i; };
template <typename T> static inline T gg_arg(const void* p) {
  const gg_scalar* s = (const gg_scalar*)p;
  return (T)(T(0.5) != T(0) ? (T)s->f : (T)s->i);   // floating T keeps 0.5
}

extern "C" int gg_run(unsigned grid, unsigned block, void (*body)(void*), void* ctx);
