"""tf.train's factories, with TF.js's names, argument order and defaults.
"""
from __future__ import annotations

from gpugrad.training.optimizers.kinds import AdadeltaOptimizer, AdagradOptimizer, AdamOptimizer, AdamWOptimizer, AdamaxOptimizer, MomentumOptimizer, RMSPropOptimizer, SGDOptimizer

__all__ = ['adadelta', 'adagrad', 'adam', 'adamax', 'adamw', 'momentum', 'rmsprop', 'sgd']

# --- tf.train factories (TF.js's names, argument order and defaults) -------------------------------


def sgd(learning_rate: float | None = None, **options) -> SGDOptimizer:
    """tf.train.sgd(learningRate)."""
    return SGDOptimizer(learning_rate, **options)


def momentum(learning_rate: float | None = None, momentum: float | None = None,
             use_nesterov: bool = False, **options) -> MomentumOptimizer:
    """tf.train.momentum(learningRate, momentum, useNesterov = false)."""
    return MomentumOptimizer(learning_rate, momentum, use_nesterov, **options)


def adagrad(learning_rate: float | None = None, initial_accumulator_value: float = 0.1,
            **options) -> AdagradOptimizer:
    """tf.train.adagrad(learningRate, initialAccumulatorValue = 0.1)."""
    return AdagradOptimizer(learning_rate, initial_accumulator_value, **options)


def adadelta(learning_rate: float = 0.001, rho: float = 0.95, epsilon: float | None = None,
             **options) -> AdadeltaOptimizer:
    """tf.train.adadelta(learningRate = .001, rho = .95, epsilon = 1e-7)."""
    return AdadeltaOptimizer(learning_rate, rho, epsilon, **options)


def adam(learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
         epsilon: float | None = None, **options) -> AdamOptimizer:
    """tf.train.adam(learningRate = 0.001, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7)."""
    return AdamOptimizer(learning_rate, beta1, beta2, epsilon, **options)


def adamw(learning_rate: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
          epsilon: float | None = None, weight_decay: float = 0.01, **options) -> AdamWOptimizer:
    """Adam with decoupled weight decay (not in TF.js)."""
    return AdamWOptimizer(learning_rate, beta1, beta2, epsilon, weight_decay, **options)


def adamax(learning_rate: float = 0.002, beta1: float = 0.9, beta2: float = 0.999,
           epsilon: float | None = None, decay: float = 0.0, **options) -> AdamaxOptimizer:
    """tf.train.adamax(learningRate = 0.002, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-7, decay = 0)."""
    return AdamaxOptimizer(learning_rate, beta1, beta2, epsilon, decay, **options)


def rmsprop(learning_rate: float | None = None, decay: float = 0.9, momentum: float = 0.0,
            epsilon: float | None = None, centered: bool = False, **options) -> RMSPropOptimizer:
    """tf.train.rmsprop(learningRate, decay = .9, momentum = 0, epsilon = 1e-7, centered = false)."""
    return RMSPropOptimizer(learning_rate, decay, momentum, epsilon, centered, **options)
