"""tf.train: the optimizers under TF.js's names (gpugrad.training.train.adam(...), as tf.train.adam)."""
from __future__ import annotations

from gpugrad.training.optimizers import AdadeltaOptimizer, AdagradOptimizer, AdamaxOptimizer, AdamOptimizer, AdamWOptimizer, MomentumOptimizer, Optimizer, RMSPropOptimizer, SGDOptimizer, adadelta, adagrad, adam, adamax, adamw, momentum, rmsprop, sgd

__all__ = ["sgd", "momentum", "adagrad", "adadelta", "adam", "adamax", "rmsprop", "adamw",
           "Optimizer", "SGDOptimizer", "MomentumOptimizer", "AdagradOptimizer",
           "AdadeltaOptimizer", "AdamOptimizer", "AdamaxOptimizer", "RMSPropOptimizer",
           "AdamWOptimizer"]
