"""A training loop in which rank 1 goes wrong at step 2, in one of three ways:

    raise   its loss function raises (inside minimize): every rank raises DistributedError
    crash   it raises outside minimize: the excepthook aborts the job at once
    hang    it stops answering (sleeps): rank 0 times out and aborts the job

    python fail.py MODE TIMEOUT OUT_DIR    # each rank writes the DistributedError it got
"""
import sys
import time
from pathlib import Path

import numpy as np

import gpugrad as tf
from gpugrad import distributed as dist

mode, timeout, out = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3])
dist.init(timeout=timeout)
w = tf.variable(tf.tensor(np.ones(4, np.float32)), name="w")
opt = dist.DistributedOptimizer(tf.train.sgd(0.1), var_list=[w])


def loss(step):
    if mode == "raise" and step == 2 and dist.rank() == 1:
        raise ValueError("bad input on purpose")
    return w.square().sum()


try:
    for step in range(1, 5):
        if step == 2 and dist.rank() == 1:
            if mode == "crash":
                raise RuntimeError("data loader broke on purpose")
            if mode == "hang":
                time.sleep(60)
        opt.minimize(lambda: loss(step))
except dist.DistributedError as exc:   # (files, not stderr: the launcher may interleave lines)
    (out / f"rank{dist.rank()}.txt").write_text(str(exc))
    raise
print(f"rank {dist.rank()} finished", flush=True)
