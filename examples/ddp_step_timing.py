"""Time one data-parallel training step on the CPU with 1 and with 2 MPI processes, and the
share of the step spent averaging gradients (the same measurement as the data-parallel rows
of `gpugrad bench --workloads train`; see gpugrad/bench/ddp.py).

    python examples/ddp_step_timing.py [--steps 60] [--ranks 2]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gpugrad.bench.ddp import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
