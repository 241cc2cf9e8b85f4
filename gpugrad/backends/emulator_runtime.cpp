// The CPU emulator's runtime (compiled once, linked by every emulated kernel; see emulated.py).
//
// A launch runs its blocks one after another; a block runs blockDim threads as fibers on this
// one OS thread (ucontext), in thread order, each until it reaches __syncthreads() or returns.
// When every thread waits at the same barrier, the block's barrier epoch advances and all
// resume: so shared memory behaves as on a GPU, deterministically. The checker watches every
// access made through the shim's wrappers and records violations as messages:
//   - shared-memory races within one barrier interval (read after write, write after read,
//     write after write by different threads), reads of elements not yet written by the
//     block, out-of-range shared indices;
//   - writes to shared memory that no thread ever reads (lost work: a tree stopped early);
//   - a barrier not reached by every thread of the block, or threads at different barriers;
//   - out-of-range indices into pointer parameters, output elements written by two threads
//     not ordered by a barrier of their block (a nondeterministic result) and output elements
//     no thread wrote.
#include "emulator_shim.h"

#include <sys/mman.h>
#include <ucontext.h>

#include <cstdarg>
#include <cstdio>
#include <string>
#include <vector>

gg_dim3 gg_blockIdx = {0, 0, 0}, gg_threadIdx = {0, 0, 0}, gg_blockDim = {1, 1, 1}, gg_gridDim = {1, 1, 1};

namespace {

const size_t kStack = 256 * 1024;   // per fiber; mapped lazily, with a guard page below
const int kMaxMessages = 12;

enum State { kReady, kWaiting, kDone };

struct Fiber {
  ucontext_t ctx;
  char* stack = nullptr;
  State state = kReady;
  int line = 0;   // the barrier it waits at
};

struct Cell {   // what the block did to one shared element in its current barrier interval
  int w_thread = -1, w_epoch = -1, w_line = 0;
  int r_thread = -1, r_other = -1, r_epoch = -1, r_line = 0, r_other_line = 0;
};

struct Shadow {
  const void* values = nullptr;
  const char* name = nullptr;
  std::vector<Cell> cells;
};

struct WriteGroup {   // the shared writes of one thread in one barrier interval
  bool wrote = false, read = false;
  const char* name = nullptr;
  long long i = 0;
  int line = 0;
};

struct Param {
  const char* name;
  long long n;
  bool writable;
  std::vector<long long> writer;   // global thread id of each element's last writer, or -1
  std::vector<int> written_at;     // the barrier epoch of that write (within its block)
};

std::vector<Fiber> fibers;
ucontext_t scheduler;
int current = -1;          // the running fiber; -1 outside a launch (a direct call)
int epoch = 0;             // barriers the block has passed
void (*body_fn)(void*);
void* body_ctx;
std::vector<Shadow> shadows;   // shadows[0..active_shadows) belong to the running block
size_t active_shadows = 0;
std::vector<WriteGroup> groups;   // [epoch * blockDim + thread]
std::vector<Param> params;
std::string log_text;
int n_violations = 0, n_logged = 0;

void report(const char* fmt, ...) {
  ++n_violations;
  if (n_logged >= kMaxMessages) return;
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  std::string line = std::string(buf) + '\n';
  if (log_text.find(line) != std::string::npos) return;   // a loop repeating one violation
  log_text += line;
  ++n_logged;
}

unsigned thread_id() { return current < 0 ? 0 : (unsigned)current; }

WriteGroup& group(int e, int t) {
  size_t k = (size_t)e * gg_blockDim.x + t;
  if (groups.size() <= k) groups.resize(k + 1);
  return groups[k];
}

void trampoline() {
  body_fn(body_ctx);
  fibers[current].state = kDone;   // returning resumes the scheduler (uc_link)
}

void ensure_stacks(unsigned n) {
  while (fibers.size() < n) {
    fibers.emplace_back();
    char* base = (char*)mmap(nullptr, kStack + 4096, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    mprotect(base, 4096, PROT_NONE);   // an overflow faults instead of corrupting a neighbour
    fibers.back().stack = base + 4096;
  }
}

void format_threads(std::string& out, const std::vector<unsigned>& ts) {
  // "0-127, 130" from a sorted list
  char buf[48];
  for (size_t a = 0; a < ts.size();) {
    size_t b = a;
    while (b + 1 < ts.size() && ts[b + 1] == ts[b] + 1) ++b;
    if (!out.empty() && out.back() != ' ') out += ", ";
    if (a == b) snprintf(buf, sizeof buf, "%u", ts[a]);
    else snprintf(buf, sizeof buf, "%u-%u", ts[a], ts[b]);
    out += buf;
    a = b + 1;
  }
}

// After a round in which every fiber ran until it waited or finished: true if the block may
// continue past the barrier, false if it finished or its barrier is divergent (reported).
bool barrier_reached(unsigned block, bool* finished) {
  unsigned done = 0;
  bool same_line = true;
  int line = -1;
  for (unsigned t = 0; t < block; ++t) {
    if (fibers[t].state == kDone) { ++done; continue; }
    if (line < 0) line = fibers[t].line;
    else if (fibers[t].line != line) same_line = false;
  }
  *finished = done == block;
  if (*finished) return false;
  if (done == 0 && same_line) return true;
  std::string desc;
  // Group the threads by where they stopped: a barrier line or the kernel's end.
  std::vector<int> places;
  for (unsigned t = 0; t < block; ++t) {
    int p = fibers[t].state == kDone ? 0 : fibers[t].line;
    if (std::find(places.begin(), places.end(), p) == places.end()) places.push_back(p);
  }
  for (int p : places) {
    std::vector<unsigned> ts;
    for (unsigned t = 0; t < block; ++t)
      if ((fibers[t].state == kDone ? 0 : fibers[t].line) == p) ts.push_back(t);
    std::string who = desc.empty() ? "threads " : "; threads ";
    format_threads(who, ts);
    char buf[96];
    if (p == 0) snprintf(buf, sizeof buf, " returned");
    else snprintf(buf, sizeof buf, " wait at the __syncthreads() of line %d", p);
    desc += who + buf;
  }
  report("divergent barrier in block %u after barrier %d: %s. Every thread of a block must reach "
         "the same __syncthreads() (a GPU hangs or misbehaves otherwise)",
         gg_blockIdx.x, epoch, desc.c_str());
  return false;
}

void check_lost_writes(unsigned block) {
  for (size_t k = 0; k < groups.size(); ++k) {
    const WriteGroup& g = groups[k];
    if (g.wrote && !g.read) {
      report("lost shared-memory work in block %u: thread %u wrote %s[%lld] at line %d after "
             "barrier %zu, and no thread read anything it wrote there before it was overwritten "
             "or the block ended (a reduction tree that stops early?)",
             gg_blockIdx.x, (unsigned)(k % block), g.name, g.i, g.line, k / block);
      return;   // one is enough: the rest are usually the same mistake
    }
  }
}

void check_outputs() {
  for (const Param& p : params) {
    if (!p.writable) continue;
    long long missing = 0, first = -1;
    for (long long i = 0; i < p.n; ++i)
      if (p.writer[i] < 0 && missing++ == 0) first = i;
    if (missing)
      report("%s: %lld of its %lld elements were never written by the launch (the first is "
             "%s[%lld]): every element of an output or scratch buffer must be written",
             p.name, missing, p.n, p.name, first);
  }
}

}  // namespace

extern "C" {

// The emulator's entry point: runs body(ctx) (the kernel with its arguments) as grid blocks of
// block threads. Returns the number of violations recorded (see gg_messages).
int gg_run(unsigned grid, unsigned block, void (*body)(void*), void* ctx) {
  log_text.clear();
  n_violations = n_logged = 0;
  ensure_stacks(block);
  gg_gridDim = {grid, 1, 1};
  gg_blockDim = {block, 1, 1};
  body_fn = body;
  body_ctx = ctx;
  for (unsigned b = 0; b < grid && n_violations == 0; ++b) {
    gg_blockIdx = {b, 0, 0};
    epoch = 0;
    active_shadows = 0;
    groups.assign(block, WriteGroup());
    for (unsigned t = 0; t < block; ++t) {
      Fiber& f = fibers[t];
      getcontext(&f.ctx);
      f.ctx.uc_stack.ss_sp = f.stack;
      f.ctx.uc_stack.ss_size = kStack;
      f.ctx.uc_link = &scheduler;
      makecontext(&f.ctx, trampoline, 0);
      f.state = kReady;
    }
    bool finished = false;
    for (;;) {
      for (unsigned t = 0; t < block; ++t) {
        if (fibers[t].state != kReady) continue;
        current = (int)t;
        gg_threadIdx = {t, 0, 0};
        swapcontext(&scheduler, &fibers[t].ctx);
      }
      current = -1;
      if (!barrier_reached(block, &finished)) break;
      ++epoch;
      for (unsigned t = 0; t < block; ++t) fibers[t].state = kReady;
    }
    if (finished) check_lost_writes(block);
    // A block with a violation ends the launch: later blocks mostly repeat it.
  }
  if (n_violations == 0) check_outputs();
  params.clear();
  gg_threadIdx = {0, 0, 0};
  return n_violations;
}

// The log_text of the last launch's first violations (gg_run returns how many there were).
const char* gg_messages() { return log_text.c_str(); }

// One thread per block, for callers that invoke a kernel function directly (no checking).
void gg_set_block(unsigned bx, unsigned grid) {
  gg_blockIdx = {bx, 0, 0};
  gg_gridDim = {grid, 1, 1};
  gg_blockDim = {1, 1, 1};
  gg_threadIdx = {0, 0, 0};
}

void gg_syncthreads(int line) {
  if (current < 0) return;   // a direct call: one thread, nothing to wait for
  Fiber& f = fibers[current];
  f.state = kWaiting;
  f.line = line;
  swapcontext(&f.ctx, &scheduler);
}

void* gg_shared_enter(void* values, long long bytes, long long n, const char* name) {
  if (current < 0) return nullptr;
  for (size_t k = 0; k < active_shadows; ++k)
    if (shadows[k].values == values) return &shadows[k];
  // First touch in this block execution: a fresh shadow, and garbage in the values (NaN for
  // floats) so that an unchecked read of stale data would show.
  if (shadows.size() <= active_shadows) shadows.emplace_back();
  Shadow& s = shadows[active_shadows++];
  s.values = values;
  s.name = name;
  s.cells.assign(n, Cell());
  memset(values, 0xff, bytes);
  return &s;
}

void gg_shared_range(const char* name, long long i, long long n, int line) {
  report("out-of-range shared index in block %u: thread %u indexes %s[%lld] at line %d, but %s "
         "has %lld elements", gg_blockIdx.x, thread_id(), name, i, line, name, n);
}

void gg_shared_read(void* shadow, long long i, int line) {
  Shadow& s = *(Shadow*)shadow;
  Cell& c = s.cells[i];
  int t = current;
  if (c.w_epoch < 0) {
    report("read of unwritten shared memory in block %u: thread %d reads %s[%lld] at line %d "
           "(after barrier %d) before any thread of the block wrote it",
           gg_blockIdx.x, t, s.name, i, line, epoch);
  } else {
    if (c.w_epoch == epoch && c.w_thread != t)
      report("shared-memory race (read after write) in block %u after barrier %d: thread %d reads "
             "%s[%lld] at line %d, which thread %d wrote at line %d with no __syncthreads() between",
             gg_blockIdx.x, epoch, t, s.name, i, line, c.w_thread, c.w_line);
    group(c.w_epoch, c.w_thread).read = true;
  }
  if (c.r_epoch != epoch) {
    c.r_epoch = epoch; c.r_thread = t; c.r_line = line; c.r_other = -1;
  } else if (c.r_thread != t && c.r_other < 0) {
    c.r_other = t; c.r_other_line = line;
  }
}

void gg_shared_write(void* shadow, long long i, int line) {
  Shadow& s = *(Shadow*)shadow;
  Cell& c = s.cells[i];
  int t = current;
  if (c.w_epoch == epoch && c.w_thread != t)
    report("shared-memory race (write after write) in block %u after barrier %d: threads %d (line "
           "%d) and %d (line %d) both write %s[%lld] with no __syncthreads() between",
           gg_blockIdx.x, epoch, c.w_thread, c.w_line, t, line, s.name, i);
  if (c.r_epoch == epoch) {
    bool first_is_other = c.r_thread != t;
    int reader = first_is_other ? c.r_thread : c.r_other;
    if (reader >= 0)
      report("shared-memory race (write after read) in block %u after barrier %d: thread %d writes "
             "%s[%lld] at line %d, which thread %d read at line %d with no __syncthreads() between",
             gg_blockIdx.x, epoch, t, s.name, i, line, reader,
             first_is_other ? c.r_line : c.r_other_line);
  }
  c.w_thread = t; c.w_epoch = epoch; c.w_line = line;
  WriteGroup& g = group(epoch, t);
  if (!g.wrote) { g.wrote = true; g.name = s.name; g.i = i; g.line = line; }
}

int gg_global_param(const char* name, long long n, int writable) {
  params.push_back({name, n, writable != 0, std::vector<long long>(writable ? n : 0, -1),
                    std::vector<int>(writable ? n : 0, -1)});
  return (int)params.size() - 1;
}

void gg_global_range(int param, long long i, int line) {
  const Param& p = params[param];
  report("out-of-range index in block %u: thread %u indexes %s[%lld] at line %d, but %s has %lld "
         "elements", gg_blockIdx.x, thread_id(), p.name, i, line, p.name, p.n);
}

void gg_global_write(int param, long long i, int line) {
  if (current < 0) return;
  Param& p = params[param];
  long long me = (long long)gg_blockIdx.x * gg_blockDim.x + current;
  long long other = p.writer[i];
  // Two threads of one block writing in different barrier intervals are ordered by the
  // barrier (__syncthreads orders global memory within a block); anything else is a race.
  bool ordered = other / gg_blockDim.x == gg_blockIdx.x && p.written_at[i] < epoch;
  if (other >= 0 && other != me && !ordered)
    report("%s[%lld] is written by two threads in one launch (thread %lld of block %lld, then "
           "thread %d of block %u at line %d): the result would depend on their order",
           p.name, i, other % gg_blockDim.x, other / gg_blockDim.x, current, gg_blockIdx.x, line);
  p.writer[i] = me;
  p.written_at[i] = epoch;
}

}  // extern "C"
