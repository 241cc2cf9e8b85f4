"""gpugrad bench: kernel micro-benchmarks on the backend in use, with baselines side by side."""
from gpugrad.bench.runner import main, run

__all__ = ["main", "run"]
