"""Layer 3, the runtime: realizing tensors (engine) and printing values.
"""
