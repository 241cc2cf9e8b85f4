"""gpugrad: TensorFlow.js's variableGrads in Python, as fused GPU kernels (numpy on CPUs)."""
from __future__ import annotations

import sys

from gpugrad.core import dtypes
from gpugrad.api import reading, methods  # noqa: F401 - they install Tensor's methods (reading first: methods adds the TF.js names of all)
from gpugrad._version import __version__  # noqa: F401
from gpugrad.api.autodiff import custom_grad, grad, grads, value_and_grad, value_and_grads, variable_grads
from gpugrad.core.caches import clear_caches
from gpugrad.api.explain import explain
from gpugrad.api.memory import dispose, keep, memory, tidy
from gpugrad.backends import get_backend, set_backend
from gpugrad.api.ops import *  # noqa: F401,F403
from gpugrad.api.ops import getitem as _getitem
from gpugrad.core.tensor import Tensor
from gpugrad.api import variables  # noqa: F401 - tf.variables.registered_variables()
from gpugrad.api.variables import Variable, dispose_variables, variable

float32, float64, int32, bool_ = dtypes.float32, dtypes.float64, dtypes.int32, dtypes.bool_

# Training (gpugrad/training/): tf.train.adam(...), tf.nn.Dense, tf.losses.*, tf.dropout.
from gpugrad.training import nn, optimizers, train  # noqa: E402

# The public modules keep their import paths (`from gpugrad.nn import Dense`, ...).
for _name, _module in (("nn", nn), ("optimizers", optimizers), ("train", train),
                       ("ops", sys.modules["gpugrad.api.ops"])):
    sys.modules[f"gpugrad.{_name}"] = _module
from gpugrad.training.nn import accuracy, dropout, losses, metrics  # noqa: E402
from gpugrad.training.loss_ops import Reduction  # noqa: E402 - tf.Reduction, as in TF.js
from gpugrad.training.checkpoint import load, save  # noqa: E402
from gpugrad.training.clipping import clip_by_global_norm  # noqa: E402
from gpugrad.training.debug import debug_nans, variable_grads  # noqa: E402 - variable_grads checked under debug_nans

# TF.js's camelCase names (tf.matMul, tf.variableGrads, ...) for every function above, bound to
# the same objects from the one table in gpugrad/core/tfjs_names.py.
from gpugrad.core.tfjs_names import install as _install_tfjs_names  # noqa: E402
_install_tfjs_names(globals())
