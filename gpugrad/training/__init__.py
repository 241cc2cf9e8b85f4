"""Layer 5, training: optimizers, layers and losses, checkpoints, clipping, debug_nans.
"""
