"""Running plans as generated kernels: shared by the CuPy backend and any other executor of
the generated CUDA source (the tests run it on the CPU through a C++ shim)."""
from __future__ import annotations

from .. import dtypes
from .interpret import run_group, run_plan


class GeneratedKernelBackend:
    """Subclasses set ``xp`` (the array module) and implement ``compile(program)``, which
    returns {kernel name: callable(grid, block, args)}."""

    name = "generated"
    xp = None

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
        return run_plan(plan, [self.adopt(b) for b in inputs], self.run_group)

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
        for launch in program.launches:
            args = tuple([slots[ref] if kind != "scratch" else scratch[ref] for kind, ref in launch.params])
            kernels[launch.kernel](launch.grid, launch.block, args)

    @staticmethod
    def slot_spec(group, slot):
        for i, s in group.outputs:
            if s == slot:
                return group.instrs[i].shape, group.instrs[i].dtype
        raise KeyError(slot)

    def adopt(self, buf):
        return buf
