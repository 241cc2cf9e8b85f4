"""The command line: `gpugrad demo` and `gpugrad bench` (the bench's tool, not its timings)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpugrad.bench import main as bench_main

ROOT = Path(__file__).resolve().parents[1]


def test_demo_prints_the_seed_results_and_the_backend():
    env = dict(os.environ, PYTHONPATH=str(ROOT), GPUGRAD_BACKEND="numpy")
    out = subprocess.run([sys.executable, "-m", "gpugrad", "demo", "--explain"], capture_output=True,
                         text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "backend numpy" in text
    for expected in ("[10, 12]", "[18, 22]", "444", "[11.5, 9.8999996]", "[53.5099983, 15.4400005]",
                     "768.2210083007812", "multi-output"):
        assert expected in text


def test_bench_writes_json_with_gpugrad_and_baseline_rows(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert bench_main(["--sizes", "6,8", "--workloads", "seed,chain,sum,matmul", "--budget", "0.005",
                       "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    assert result["backend"] == "numpy"
    impls = {(r["workload"], r["size"], r["impl"]) for r in result["rows"]}
    for workload in ("seed", "chain", "sum"):
        for size in (64, 256):
            assert (workload, size, "gpugrad") in impls and (workload, size, "numpy") in impls
    for row in result["rows"]:
        assert row["time_us"] > 0 and row["first_call_ms"] > 0
    table = capsys.readouterr().out
    assert "copy GB/s" in table and "x floor" in table and "gpugrad/this" in table


def test_bench_elementwise_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "bench.png"
    assert bench_main(["--sizes", "6", "--workloads", "elementwise,seed", "--budget", "0.002",
                       "--plot", str(png)]) == 0
    assert png.stat().st_size > 1000


def test_bench_rejects_unknown_workloads():
    with pytest.raises(SystemExit, match="unknown workload"):
        bench_main(["--sizes", "6", "--workloads", "nope"])


def test_training_step_workload_and_its_numpy_baseline_run():
    from gpugrad.bench import workloads as W
    work = W.mlp_step(8, 16, 12, 4, set())
    for _ in range(3):
        work.run()
        work.baselines["numpy"]()
    assert work.flops > 0 and work.name == "mlp8x16-12-4"


def test_version_flag(capsys):
    from gpugrad.cli import main
    import gpugrad
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"gpugrad {gpugrad.__version__}"
    assert gpugrad.__version__ == "0.1.0"
