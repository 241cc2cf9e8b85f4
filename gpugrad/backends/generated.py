"""Running plans as generated kernels: shared by the CuPy backend and any other executor of
the generated CUDA source (the tests run it on the CPU through a C++ shim)."""
from __future__ import annotations

import functools

from gpugrad.core import dtypes
from gpugrad.backends.interpret import compile_plan, run_group, run_plan


def sort_buckets(xp, index, starts, perm, spec) -> None:
    """A scatter_add's bucket sort by the array library (codegen._scatter's library_sort):
    each index's bucket (the index, or N outside [0, N)) as a unique 64-bit key
    ((row * (N + 1) + bucket) * K + k), so any sort orders them as the stable one would.
    Writes perm (the k of each index in bucket order) and starts (where each bucket begins)."""
    _, b, k, n = spec
    if b * (n + 1) * k >= 2**62:
        raise ValueError(f"scatter_add: {b} rows of {k} indices into {n} buckets are too many "
                         "for the 64-bit sort keys; split the indices")
    idx = index.reshape(b, k).astype(xp.int64)
    rows = xp.arange(b, dtype=xp.int64).reshape(b, 1)
    bucket = xp.where((idx >= 0) & (idx < n), idx, n) + rows * (n + 1)
    keys = xp.sort((bucket * k + xp.arange(k, dtype=xp.int64)).reshape(-1))
    perm[...] = (keys % k).astype(xp.int32)
    targets = (rows * (n + 1) + xp.arange(n + 2, dtype=xp.int64)).reshape(-1)
    found = xp.searchsorted(keys // k, targets).reshape(b, n + 2) - rows * k
    starts[...] = found.reshape(-1).astype(xp.int32)


class GeneratedKernelBackend:
    """Subclasses set ``xp`` (the array module) and implement ``compile(program)``, which
    returns {kernel name: callable(grid, block, args)}."""

    name = "generated"
    xp = None
    # The backend's own array class: inputs of exactly it need no adopt() (the common case,
    # tested per input by class rather than by a call each). None: every input is adopted.
    array_type = None
    # How compile()'s callables take the launch shape: (grid, block, args) with ints, or, when
    # True, with 1-tuples (what a CuPy RawKernel takes itself: no wrapper call per launch).
    dims_as_tuples = False

    @functools.cached_property
    def runner_key(self) -> tuple:
        """The key of this backend's runner in plan.runners: per backend object (its runners
        hold its kernels and its allocator). engine.run_plan_weak's C form calls that runner
        itself when every input is of exactly array_type (see run)."""
        return (self.name, id(self))

    def _dims(self, launch) -> tuple:
        if self.dims_as_tuples:
            return (launch.grid,), (launch.block,)
        return launch.grid, launch.block

    def compile(self, program) -> dict:
        raise NotImplementedError

    def kernels_for(self, group) -> dict:
        compiled = group.cache.get(self.name)
        if compiled is None:
            compiled = group.cache[self.name] = self.compile(group.program)
        return compiled

    def empty(self, shape, dtype: str):
        return self.xp.empty(shape, dtype=dtypes.NUMPY[dtype])

    def run(self, plan, inputs: list) -> list:
        # The plan as one function, per backend object (its launchers hold its kernels and
        # its allocator); a subclass that runs groups its own way keeps the generic loop (and
        # so never has a runner).
        array = self.array_type
        for b in inputs:
            if b.__class__ is not array:
                inputs = [self.adopt(b) for b in inputs]
                break
        key = self.runner_key
        runner = plan.runners.get(key)
        if runner is not None:
            return runner(inputs)
        if type(self).run_group is not GeneratedKernelBackend.run_group \
                or type(self)._launch is not GeneratedKernelBackend._launch:
            return run_plan(plan, list(inputs), self.run_group)   # (it fills a list of its own)
        if key not in plan.runners:   # a first run: the loop (compiling costs more)
            plan.runners[key] = None
            return run_plan(plan, list(inputs), self.run_group)
        group = plan.groups[0]
        if len(plan.groups) == 1 and group.kind != "matmul" \
                and {s for s, _ in plan.outputs} <= {s for _, s in group.outputs}:
            # one group making every output: its launcher is the whole plan (no slot list)
            runner = plan.runners[key] = self.launcher(group, returning=plan.outputs)
            return runner(inputs)
        # the launchers allocate each output at its instruction's shape: no reshape to test
        shapes = {s: self.slot_spec(g, s)[0] for g in plan.groups if g.kind != "matmul"
                  for _, s in g.outputs}
        runner = plan.runners[key] = compile_plan(
            plan, [self.launcher(g) for g in plan.groups], shapes=shapes)
        return runner(inputs)

    def launcher(self, group, returning=None):
        """A function of the slot list that runs the group: its output and scratch
        allocations and its launches, with everything known from the plan settled once (the
        kernels, output shapes and dtypes, argument positions). With ``returning`` (a plan's
        outputs, (slot, shape) each, all of them this group's), a function of the inputs
        that returns those outputs instead of storing them in slots."""
        if group.kind == "matmul":
            xp = self.xp
            return lambda slots: run_group(group, slots, xp)   # cuBLAS through the array module
        # Written out as one Python function: a loop over launches building each argument
        # tuple cost more than the launches' own Python calls (a comprehension is a frame).
        program = group.program
        kernels = self.kernels_for(group)
        ns = {"empty": self.empty}
        local = {s for _, s in group.outputs} if returning is not None else set()

        def slot(s):
            return f"o{s}" if s in local else f"slots[{s}]"
        lines = ["def run(slots):"]
        for _, s in group.outputs:
            ns[f"shape{s}"], ns[f"dtype{s}"] = self.slot_spec(group, s)
            lines.append(f"    {slot(s)} = empty(shape{s}, dtype{s})")
        for j, (n, dtype) in enumerate(program.scratch):
            ns[f"scratch_dtype{j}"] = dtype
            lines.append(f"    t{j} = empty(({n},), scratch_dtype{j})")
        if program.library_sort is not None:   # scatter_add's buckets, sorted by the library
            ns["sort_buckets"], ns["xp"], ns["sort"] = sort_buckets, self.xp, program.library_sort
            lines.append(f"    sort_buckets(xp, {slot(program.library_sort[0])}, t0, t1, sort)")
        for i, launch in enumerate(program.launches):
            ns[f"kernel{i}"] = kernels[launch.kernel]
            ns[f"grid{i}"], ns[f"block{i}"] = self._dims(launch)
            args = "".join(f"t{ref}, " if kind == "scratch" else f"{slot(ref)}, "
                           for kind, ref in launch.params)
            lines.append(f"    kernel{i}(grid{i}, block{i}, ({args}))")
        if returning is not None:
            outs = [slot(s) if tuple(shape) == tuple(ns[f"shape{s}"]) else f"{slot(s)}.reshape({tuple(shape)!r})"
                    for s, shape in returning]
            lines.append(f"    return [{', '.join(outs)}]")
        if len(lines) == 1:
            lines.append("    pass")
        source = "\n".join(lines)
        exec(compile(source, f"<gpugrad launcher {group.name}>", "exec"), ns)
        ns["run"].source = source
        return ns["run"]

    def run_group(self, group, slots: list) -> None:
        if group.kind == "matmul":
            run_group(group, slots, self.xp)   # cuBLAS through the array module
        else:
            self._launch(group, slots)

    def _launch(self, group, slots) -> None:
        program = group.program
        kernels = self.kernels_for(group)
        for _, s in group.outputs:
            shape, dtype = self.slot_spec(group, s)
            slots[s] = self.empty(shape, dtype)
        scratch = [self.empty((n,), dtype) for n, dtype in program.scratch]
        if program.library_sort is not None:
            sort_buckets(self.xp, slots[program.library_sort[0]], scratch[0], scratch[1], program.library_sort)
        for launch in program.launches:
            args = tuple([slots[ref] if kind != "scratch" else scratch[ref] for kind, ref in launch.params])
            kernels[launch.kernel](*self._dims(launch), args)

    @staticmethod
    def slot_spec(group, slot):
        for i, s in group.outputs:
            if s == slot:
                return group.instrs[i].shape, group.instrs[i].dtype
        raise KeyError(slot)

    def adopt(self, buf):
        return buf
