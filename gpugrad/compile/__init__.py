"""Layer 1, math and compilation: the math layer over nodes (lax), the reverse step
(derivatives), plans (schedule), CUDA source (codegen, optim_codegen), NVRTC (nvrtc, cuda_check).
"""
