"""gpugrad: TensorFlow.js's variableGrads in Python, as fused GPU kernels (numpy on CPUs)."""
from __future__ import annotations

from . import dtypes, reading, methods  # noqa: F401 - they install Tensor's methods (reading first: methods adds the TF.js names of all)
from ._version import __version__  # noqa: F401
from .autodiff import (custom_grad, grad, grads, value_and_grad, value_and_grads,
                       variable_grads)
from .caches import clear_caches
from .explain import explain
from .memory import dispose, keep, memory, tidy
from .backends import get_backend, set_backend
from .ops import *  # noqa: F401,F403
from .ops import getitem as _getitem
from .tensor import Tensor
from .variables import Variable, dispose_variables, variable

float32, float64, int32, bool_ = dtypes.float32, dtypes.float64, dtypes.int32, dtypes.bool_

# Training (gpugrad/optimizers.py, gpugrad/nn.py): tf.train.adam(...), tf.losses.*, tf.dropout.
from . import nn, optimizers, train  # noqa: E402
from .nn import accuracy, dropout, losses, metrics  # noqa: E402
from .loss_ops import Reduction  # noqa: E402 - tf.Reduction, as in TF.js
from .checkpoint import load, save  # noqa: E402
from .clipping import clip_by_global_norm  # noqa: E402
from .debug import debug_nans, variable_grads  # noqa: E402 - variable_grads checked under debug_nans

# TF.js's camelCase names (tf.matMul, tf.variableGrads, ...) for every function above, bound to
# the same objects from the one table in gpugrad/tfjs_names.py.
from .tfjs_names import install as _install_tfjs_names  # noqa: E402
_install_tfjs_names(globals())
