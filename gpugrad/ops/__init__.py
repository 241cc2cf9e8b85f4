"""The public ops: TF.js names in Python, numpy broadcasting, built from primitives.

Every function checks its arguments and computes the result's shape and dtype at once
(raising with both shapes in the message); nothing runs until a value is read. By concern:
convert (making tensors, argument checks), creation, elementwise, reductions, activations,
movement, indexing, scans, linalg, normalization, conv (convolution and pooling).
"""
from __future__ import annotations

from typing import Any

from .activations import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .convert import *  # noqa: F401,F403
from .creation import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .indexing import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .movement import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .reductions import *  # noqa: F401,F403
from .scans import *  # noqa: F401,F403
from .activations import __all__ as _activations
from .conv import __all__ as _conv
from .convert import __all__ as _convert
from .creation import __all__ as _creation
from .elementwise import __all__ as _elementwise
from .indexing import __all__ as _indexing
from .indexing import getitem  # noqa: F401 - basic indexing, extended with host-known arrays
from .linalg import __all__ as _linalg
from .movement import __all__ as _movement
from .normalization import __all__ as _normalization
from .reductions import __all__ as _reductions
from .scans import __all__ as _scans

__all__ = (_activations + _conv + _convert + _creation + _elementwise + _indexing + _linalg
           + _movement + _normalization + _reductions + _scans)
