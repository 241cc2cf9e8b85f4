"""The optimizers, one class each: the update rule (kernels/optim/<rule>.cu), its scalars and
its TF.js-style arguments.
"""
from __future__ import annotations

import math

from gpugrad.training.optimizers.checks import checked_in_range, reject_unknown_options
from gpugrad.training.optimizers.base import EPSILON, Optimizer

__all__ = ['AdadeltaOptimizer', 'AdagradOptimizer', 'AdamOptimizer', 'AdamWOptimizer', 'AdamaxOptimizer', 'MomentumOptimizer', 'RMSPropOptimizer', 'SGDOptimizer']

# --- the optimizers ----------------------------------------------------------------------------


class SGDOptimizer(Optimizer):
    """w -= learning_rate * g."""
    factory = rule_name = "sgd"

    def __init__(self, learning_rate: float, *, var_list=None, **options):
        reject_unknown_options("sgd", options, ["learning_rate", "var_list"])
        super().__init__(learning_rate, var_list)

    def scalars(self, t):
        return {"lr": self.learning_rate}


class MomentumOptimizer(Optimizer):
    """a = momentum * a + g; w -= learning_rate * a (Nesterov: w -= lr * (g + momentum * a))."""
    factory = "momentum"
    slot_init = {"a": 0.0}
    slot_names = {"a": "momentum"}

    def __init__(self, learning_rate: float, momentum: float, use_nesterov: bool = False, *,
                 var_list=None, **options):
        reject_unknown_options("momentum", options, ["learning_rate", "momentum", "use_nesterov", "var_list"])
        if momentum is None:
            raise TypeError("MomentumOptimizer: momentum must be given, e.g. tf.train.momentum(0.01, 0.9).")
        self.momentum = checked_in_range("MomentumOptimizer", "momentum", momentum, 0.0, math.inf, False)
        self.use_nesterov = bool(use_nesterov)
        self.rule_name = "momentum_nesterov" if self.use_nesterov else "momentum"
        super().__init__(learning_rate, var_list)

    def scalars(self, t):
        return {"lr": self.learning_rate, "m": self.momentum}


class AdagradOptimizer(Optimizer):
    """acc += g^2; w -= learning_rate * g / sqrt(acc + eps)."""
    factory = rule_name = "adagrad"
    slot_names = {"acc": "accumulator"}

    def __init__(self, learning_rate: float, initial_accumulator_value: float = 0.1, *,
                 var_list=None, **options):
        reject_unknown_options("adagrad", options, ["learning_rate", "initial_accumulator_value", "var_list"])
        init = checked_in_range("AdagradOptimizer", "initial_accumulator_value", initial_accumulator_value,
                         0.0, math.inf, False)
        self.initial_accumulator_value = init
        self.slot_init = {"acc": init}
        super().__init__(learning_rate, var_list)

    def scalars(self, t):
        return {"lr": self.learning_rate, "eps": EPSILON}


class AdadeltaOptimizer(Optimizer):
    """Zeiler's Adadelta (the paper's order, unlike TF.js; see kernels/optim/adadelta.cu)."""
    factory = rule_name = "adadelta"
    slot_init = {"sq": 0.0, "dx": 0.0}
    slot_names = {"sq": "accum_grad", "dx": "accum_var"}

    def __init__(self, learning_rate: float = 0.001, rho: float = 0.95, epsilon: float | None = None,
                 *, var_list=None, **options):
        reject_unknown_options("adadelta", options, ["learning_rate", "rho", "epsilon", "var_list"])
        self.rho = checked_in_range("AdadeltaOptimizer", "rho", rho, 0.0, 1.0)
        self.epsilon = _epsilon("AdadeltaOptimizer", epsilon)
        super().__init__(learning_rate, var_list)

    def scalars(self, t):
        return {"lr": self.learning_rate, "rho": self.rho, "eps": self.epsilon}


def _epsilon(who: str, epsilon: float | None) -> float:
    return EPSILON if epsilon is None else checked_in_range(who, "epsilon", epsilon, 0.0, math.inf, False)


class AdamOptimizer(Optimizer):
    """Adam with bias correction; see kernels/optim/adam.cu."""
    factory = rule_name = "adam"
    slot_init = {"m": 0.0, "v": 0.0}
    _options = ["learning_rate", "beta1", "beta2", "epsilon", "var_list"]

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float | None = None, *, var_list=None, **options):
        reject_unknown_options(self.factory, options, self._options)
        who = type(self).__name__
        self.beta1 = checked_in_range(who, "beta1", beta1, 0.0, 1.0)
        self.beta2 = checked_in_range(who, "beta2", beta2, 0.0, 1.0)
        self.epsilon = _epsilon(who, epsilon)
        super().__init__(learning_rate, var_list)

    def scalars(self, t):
        return {"lr": self.learning_rate, "b1": self.beta1, "b2": self.beta2, "eps": self.epsilon,
                "bc1": 1 - self.beta1 ** t, "bc2": 1 - self.beta2 ** t}


class AdamWOptimizer(AdamOptimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter; PyTorch's AdamW). Not in TF.js;
    its epsilon defaults to TF.js's 1e-7 like the other optimizers here, weight_decay to
    PyTorch's 0.01."""
    factory = rule_name = "adamw"
    _options = AdamOptimizer._options[:-1] + ["weight_decay", "var_list"]

    def __init__(self, learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float | None = None, weight_decay: float = 0.01, *, var_list=None, **options):
        self.weight_decay = checked_in_range("AdamWOptimizer", "weight_decay", weight_decay, 0.0, math.inf, False)
        super().__init__(learning_rate, beta1, beta2, epsilon, var_list=var_list, **options)

    def scalars(self, t):
        return dict(super().scalars(t), wd=self.weight_decay)


class AdamaxOptimizer(Optimizer):
    """Adamax, with TF.js's learning-rate decay lr / (1 + decay * (t - 1))."""
    factory = rule_name = "adamax"
    slot_init = {"m": 0.0, "u": 0.0}
    slot_names = {"u": "v"}

    def __init__(self, learning_rate: float = 0.002, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float | None = None, decay: float = 0.0, *, var_list=None, **options):
        reject_unknown_options("adamax", options, ["learning_rate", "beta1", "beta2", "epsilon", "decay", "var_list"])
        self.beta1 = checked_in_range("AdamaxOptimizer", "beta1", beta1, 0.0, 1.0)
        self.beta2 = checked_in_range("AdamaxOptimizer", "beta2", beta2, 0.0, 1.0)
        self.epsilon = _epsilon("AdamaxOptimizer", epsilon)
        self.decay = checked_in_range("AdamaxOptimizer", "decay", decay, 0.0, math.inf, False)
        super().__init__(learning_rate, var_list)

    def scalars(self, t):
        return {"lr": self.learning_rate / (1 + self.decay * (t - 1)), "b1": self.beta1,
                "b2": self.beta2, "eps": self.epsilon, "bc1": 1 - self.beta1 ** t}


class RMSPropOptimizer(Optimizer):
    """RMSProp with momentum; centered as in Graves 2013 (see kernels/optim/rmsprop_centered.cu)."""
    factory = "rmsprop"
    slot_names = {"s": "rms", "mom": "momentum"}

    def __init__(self, learning_rate: float, decay: float = 0.9, momentum: float = 0.0,
                 epsilon: float | None = None, centered: bool = False, *, var_list=None, **options):
        reject_unknown_options("rmsprop", options,
                        ["learning_rate", "decay", "momentum", "epsilon", "centered", "var_list"])
        if learning_rate is None:  # TF.js's own message, with the fix
            raise TypeError("learningRate for RMSPropOptimizer must be defined; pass a positive "
                            "number, e.g. tf.train.rmsprop(0.01).")
        self.decay = checked_in_range("RMSPropOptimizer", "decay", decay, 0.0, 1.0)
        self.momentum = checked_in_range("RMSPropOptimizer", "momentum", momentum, 0.0, math.inf, False)
        self.epsilon = _epsilon("RMSPropOptimizer", epsilon)
        self.centered = bool(centered)
        self.rule_name = "rmsprop_centered" if self.centered else "rmsprop"
        self.slot_init = {"s": 0.0, "mg": 0.0, "mom": 0.0} if self.centered else {"s": 0.0, "mom": 0.0}
        super().__init__(learning_rate, var_list)

    def scalars(self, t):
        return {"lr": self.learning_rate, "d": self.decay, "mu": self.momentum, "eps": self.epsilon}


