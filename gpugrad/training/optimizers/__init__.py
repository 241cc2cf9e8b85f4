"""Optimizers on top of variable_grads, with TF.js's names and defaults (``tf.train.*``).

Each optimizer's math is its update rule, kernels/optim/<rule>.cu (see optim_codegen.py): the
numpy backend runs the rule's statements with numpy, and a GPU backend runs ONE generated
kernel per dtype for all variables of a step (multi-tensor apply). Updates are in place.

Better than TF.js, on purpose:
* State (slots) is keyed by the Variable object, never by the variable's position in the
  applied list (TF.js gives p2 p1's momentum when the list changes). It lives on the optimizer
  in a weak dict keyed by identity, not in the variable registry: TF.js registers slots as variables
  (using up auto names and showing up in the default var_list); gpugrad does not.
* Each variable counts its own steps t, as PyTorch does, so a variable that joins training
  late gets its own bias correction (TF.js uses the optimizer's global count).
* Adadelta and centered RMSProp follow their papers (see their rule files).
* A missing or non-positive learning rate is an error, not NaN.
* Every check runs before any variable is touched: a bad gradient leaves all variables and all
  state as they were.

State as weights (get_weights / set_weights, and gpugrad.save / gpugrad.load): TF.js lists
``iter`` then its slot variables by position; gpugrad names everything by variable name, so a
list of weights means the same thing whatever order variables were applied in:

* ``iter``: optimizer.iterations (successful applies), an int32 scalar; first, as in TF.js.
* then per variable that has state, in sorted name order: ``<name>/step``, the variable's own
  update count (int32 scalar; Adam's bias correction reads it), then one entry per slot under
  TF.js's slot names: ``<name>/momentum`` (momentum), ``<name>/accumulator`` (adagrad),
  ``<name>/accum_grad`` and ``<name>/accum_var`` (adadelta), ``<name>/m`` and ``<name>/v``
  (adam, adamw, adamax), ``<name>/rms``, ``<name>/momentum`` and, centered, ``<name>/mg``
  (rmsprop). Each slot has the variable's shape and dtype.
"""
from __future__ import annotations

from gpugrad.training.optimizers.base import *  # noqa: F401,F403
from gpugrad.training.optimizers.factories import *  # noqa: F401,F403
from gpugrad.training.optimizers.kinds import *  # noqa: F401,F403
from gpugrad.training.optimizers.base import __all__ as _base
from gpugrad.training.optimizers.factories import __all__ as _factories
from gpugrad.training.optimizers.kinds import __all__ as _kinds

# By concern: checks (arguments), state (slots and the memory rules of in-place updates), base
# (the Optimizer), kinds (one class per optimizer), factories (tf.train's functions).
__all__ = _base + _kinds + _factories
