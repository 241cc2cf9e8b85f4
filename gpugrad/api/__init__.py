"""Layer 4, the public API: ops, variables, autodiff, memory (tidy, dispose), reading values,
chaining methods, numpy interop, explain.
"""
