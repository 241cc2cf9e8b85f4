"""32-bit or 64-bit indices: the choice covers every buffer a kernel addresses and the largest
grid-stride step, so no index wraps (tested on the arithmetic: no 2^31-element buffer needed)."""
from __future__ import annotations

import numpy as np
import pytest

from gpugrad.compile import codegen
from gpugrad.compile.codegen import INT32_MAX, MAX_STRIDE, generate, index_type_for
from gpugrad.compile.schedule import Group, Instr


def _wraps_int32(total: int, stride: int) -> bool:
    """Does a 32-bit grid-stride loop over [0, total) wrap? The last index a thread holds
    before leaving is below total + stride; simulate that step in int32 arithmetic."""
    last = np.int32(total - 1)
    with np.errstate(over="ignore"):
        after = last + np.int32(stride)        # numpy wraps like CUDA's int
    return int(after) != int(last) + stride


@pytest.mark.parametrize("extent", [1, 2**20, (INT32_MAX - MAX_STRIDE) // 2,
                                    (INT32_MAX - MAX_STRIDE) // 2 + 1, 2**31 - 2**20 - 1,
                                    2**31 - 1, 2**31, 2**40])
def test_chosen_width_never_wraps(extent):
    kind = index_type_for([extent])
    if kind == "int":
        assert not _wraps_int32(extent, MAX_STRIDE)
        assert 2 * extent <= INT32_MAX   # a reduction chunk's end before clamping
    else:
        assert extent > (INT32_MAX - MAX_STRIDE) // 2


def test_old_margin_wrapped_where_the_new_one_does_not():
    # The old rule took int below 2^31 - 2^20; the grid-stride step reaches 2^21.
    total = 2**31 - 2**20 - 1
    assert MAX_STRIDE == 2**21
    assert _wraps_int32(total, MAX_STRIDE)
    assert index_type_for([total]) == "long long"


def _slice_group(input_extent: int) -> Group:
    """An elementwise group over 4 elements read from the far end of a huge input."""
    g = Group(0, "elementwise", (4,), ())
    start = input_extent - 4
    g.instrs = [Instr("load", 0, (input_extent,), "float32", ()),
                Instr("slice", ((start, input_extent, 1),), (4,), "float32", (0,)),
                Instr("exp", "float32", (4,), "float32", (1,))]
    g.inputs = [0]
    g.outputs = [(2, 1)]
    return g


def test_width_follows_the_largest_buffer_not_the_group():
    small = generate(_slice_group(1000)).source
    huge = generate(_slice_group(2**31 + 10)).source
    assert "typedef int idx_t;" in small
    assert "typedef long long idx_t;" in huge
    assert f"{2**31 + 10 - 4}" in huge      # the slice start, as a 64-bit index expression


def test_every_grid_stride_step_is_covered():
    # Elementwise launches cap their grid so blocks x threads stays within MAX_STRIDE, and a
    # reduction's block loop steps by at most REDUCTION_GRID.
    assert codegen.ELEMENTWISE_GRID * codegen.BLOCK <= MAX_STRIDE
    assert codegen.REDUCTION_GRID <= MAX_STRIDE
    g = Group(0, "elementwise", (2**30,), ())
    g.instrs = [Instr("load", 0, (2**30,), "float32", ()), Instr("exp", "float32", (2**30,), "float32", (0,))]
    g.inputs, g.outputs = [0], [(1, 1)]
    (launch,) = generate(g).launches
    assert launch.grid * launch.block <= MAX_STRIDE
