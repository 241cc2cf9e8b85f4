"""The public ops: TF.js names in Python, numpy broadcasting, built from primitives.

Every function checks its arguments and computes the result's shape and dtype at once
(raising with both shapes in the message); nothing runs until a value is read. By concern:
convert (making tensors, argument checks), creation, elementwise, reductions, activations,
movement, indexing, scans, selection (top_k), linalg, normalization, conv (convolution and
pooling).
"""
from __future__ import annotations

from typing import Any

from gpugrad.api.ops.activations import *  # noqa: F401,F403
from gpugrad.api.ops.conv import *  # noqa: F401,F403
from gpugrad.api.ops.convert import *  # noqa: F401,F403
from gpugrad.api.ops.creation import *  # noqa: F401,F403
from gpugrad.api.ops.elementwise import *  # noqa: F401,F403
from gpugrad.api.ops.indexing import *  # noqa: F401,F403
from gpugrad.api.ops.linalg import *  # noqa: F401,F403
from gpugrad.api.ops.movement import *  # noqa: F401,F403
from gpugrad.api.ops.normalization import *  # noqa: F401,F403
from gpugrad.api.ops.reductions import *  # noqa: F401,F403
from gpugrad.api.ops.scans import *  # noqa: F401,F403
from gpugrad.api.ops.selection import *  # noqa: F401,F403
from gpugrad.api.ops.activations import __all__ as _activations
from gpugrad.api.ops.conv import __all__ as _conv
from gpugrad.api.ops.convert import __all__ as _convert
from gpugrad.api.ops.creation import __all__ as _creation
from gpugrad.api.ops.elementwise import __all__ as _elementwise
from gpugrad.api.ops.indexing import __all__ as _indexing
from gpugrad.api.ops.indexing import getitem  # noqa: F401 - basic indexing, extended with host-known arrays
from gpugrad.api.ops.linalg import __all__ as _linalg
from gpugrad.api.ops.movement import __all__ as _movement
from gpugrad.api.ops.normalization import __all__ as _normalization
from gpugrad.api.ops.reductions import __all__ as _reductions
from gpugrad.api.ops.scans import __all__ as _scans
from gpugrad.api.ops.selection import __all__ as _selection

__all__ = (_activations + _conv + _convert + _creation + _elementwise + _indexing + _linalg
           + _movement + _normalization + _reductions + _scans + _selection)
