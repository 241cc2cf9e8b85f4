"""gpugrad bench's method: statistics, per-workload floor, progress, --plot/--compare-to/
--overhead and input rotation. Tiny sizes and budgets; nothing here asserts on a time."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest

import gpugrad as tf
from gpugrad import backends
from gpugrad.bench import overhead, runner, timing
from gpugrad.bench import main as bench_main

TINY = ["--sizes", "4,6", "--budget", "0.002"]


def _bench_json(tmp_path, *args, name="bench.json"):
    path = tmp_path / name
    assert bench_main([*TINY, *args, "--json", str(path)]) == 0
    return json.loads(path.read_text())


def test_rows_carry_median_spread_and_every_sample(tmp_path, capsys):
    result = _bench_json(tmp_path, "--workloads", "seed,sum")
    rows = [r for r in result["rows"] if "error" not in r]
    assert {(r["workload"], r["size"]) for r in rows} == {(w, n) for w in ("seed", "sum") for n in (16, 64)}
    for r in rows:
        samples = r["samples_s"]
        assert r["samples"] == len(samples) >= 10 and r["batch"] >= 1
        assert r["time_us"] == pytest.approx(np.median(samples) * 1e6)
        assert r["p10_us"] <= r["time_us"] <= r["p90_us"]
        assert r["p10_us"] == pytest.approx(np.percentile(samples, 10) * 1e6)
        # x floor is this row's median over its own copy's median, both in bandwidth terms
        assert r["x_floor"] == pytest.approx(r["copy_gbps"] / r["gbps"])
    table = capsys.readouterr().out
    assert "p10-p90" in table and "copy GB/s" in table


def test_the_copy_floor_is_timed_in_the_same_rounds_as_each_workload(monkeypatch):
    calls = []
    real = timing.side_by_side

    def recording(fns, *args, **kwargs):
        calls.append(sorted(fns))
        return real(fns, *args, **kwargs)
    monkeypatch.setattr(timing, "side_by_side", recording)
    runner.run([16, 64], ["seed", "sum"], budget_s=0.002)
    assert calls == [["copy", "gpugrad", "numpy"]] * 4  # one call per workload and size


def test_progress_lines_reach_a_stderr_that_is_not_a_terminal(capsys):
    assert not sys.stderr.isatty()
    bench_main([*TINY, "--workloads", "seed,chain"])
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("gpugrad bench [1/4] seed n=16") and "s left" in lines[0]
    assert lines[-1].startswith("gpugrad bench [4/4] chain n=64")


def test_plot_without_matplotlib_fails_before_any_workload_runs(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError

    def must_not_run(*args, **kwargs):
        raise AssertionError("a workload ran before --plot was checked")
    monkeypatch.setattr(runner, "run", must_not_run)
    with pytest.raises(SystemExit, match="needs matplotlib"):
        bench_main([*TINY, "--workloads", "seed", "--plot", str(tmp_path / "b.png")])


def test_compare_to_prints_the_ratio_to_a_saved_run(tmp_path, capsys):
    _bench_json(tmp_path, "--workloads", "seed", name="main.json")
    capsys.readouterr()
    saved = str(tmp_path / "main.json")
    result = _bench_json(tmp_path, "--workloads", "seed,sum", "--compare-to", saved, name="new.json")
    table = capsys.readouterr().out
    assert f"vs saved: this median / the same row's median in {saved}" in table
    for r in result["rows"]:
        if r["workload"] == "seed":
            assert r["vs_saved"] > 0
            assert f"{r['vs_saved']:.2f}" in table
        else:  # not in the saved run
            assert "vs_saved" not in r


def test_compare_to_a_missing_file_fails_before_running(monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "run", lambda *a, **k: pytest.fail("ran"))
    with pytest.raises(SystemExit, match="--compare-to"):
        bench_main([*TINY, "--compare-to", str(tmp_path / "nope.json")])


def test_overhead_reports_microseconds_per_cached_call(tmp_path, capsys):
    result = _bench_json(tmp_path, "--workloads", "", "--overhead")
    assert result["rows"] == []
    assert [(r["workload"], r["size"]) for r in result["overhead"]] == [("seed", 16), ("chain", 16)]
    for r in result["overhead"]:
        assert r["overhead_us"] > 0 and r["real_us"] > 0 and r["samples"] == len(r["samples_s"])
    out = capsys.readouterr()
    assert "host overhead of a cached variable_grads call" in out.out
    assert out.err.splitlines()[-1].startswith("gpugrad bench [2/2] overhead chain n=16")


def test_the_overhead_backend_runs_the_plan_without_computing_and_is_then_removed():
    real = backends.current()
    fake = overhead.NoKernelBackend(real)
    p = tf.variable(tf.tensor([1.0, 2.0]))
    try:
        with overhead._installed(fake):
            for _ in range(2):  # the first call builds the plan, the second replays it
                value, grads = tf.variable_grads(lambda: (p * p).sum(), [p])
        handed_out = [id(b) for b in fake._buffers.values()]
        assert id(grads[p.name].data_buffer()) in handed_out  # not computed: a preallocated buffer
        assert backends.current() is real
        np.testing.assert_allclose(tf.variable_grads(lambda: (p * p).sum(), [p]).grads[p.name].numpy(),
                                   [2.0, 4.0])
    finally:
        p.dispose()


def test_input_sets_cover_twice_the_cache_up_to_a_cap():
    mb = 2 ** 20
    assert runner._input_sets(20 * mb, 0) == 1             # no cache to defeat (CPU)
    assert runner._input_sets(100 * mb, 50 * mb) == 1      # already twice the L2
    assert runner._input_sets(20 * mb, 50 * mb) == 5
    assert runner._input_sets(1000, 50 * mb) == runner.MAX_INPUT_SETS


def test_small_workloads_rotate_input_sets_when_a_cache_is_given(tmp_path):
    # 2^4 float32 seed moves 320 bytes: with a 1 KB "cache" it needs ceil(2048/320) = 7 sets.
    result = _bench_json(tmp_path, "--workloads", "seed", "--cache-mb", str(1 / 1024))
    sets = {r["size"]: r["input_sets"] for r in result["rows"]}
    assert sets == {16: 7, 64: 2}
    assert list(tf.variables.registered_variables()) == []  # every set's variables disposed


def test_help_lists_each_workload_and_what_it_measures(capsys):
    with pytest.raises(SystemExit):
        bench_main(["--help"])
    text = capsys.readouterr().out
    for name, what in runner.WORKLOADS.items():
        assert f"  {name}" in text and what.split(":")[0][:30] in text
    assert "--compare-to" in text and "--overhead" in text


def test_compiled_baselines_are_built_once_per_function_code(monkeypatch):
    from gpugrad.bench import workloads as W
    monkeypatch.setattr(W, "_COMPILED", {})
    built = []

    def make(i):
        return lambda xp, a: xp.sum(a)  # same code every time, a new function object
    first = W._compiled("test", make(0), (0,), lambda: built.append(0) or "compiled")
    again = W._compiled("test", make(1), (0,), lambda: built.append(1) or "recompiled")
    assert first == again == "compiled" and built == [0]


def test_data_parallel_rows_of_the_train_workload():
    from gpugrad.bench import ddp
    if ddp.mpiexec_path() is None:
        pytest.skip("mpiexec not installed (pip install \"gpugrad[dist]\")")
    result = ddp.measure_processes(steps=3, ranks=2)
    assert "error" not in result, result
    assert result["ddp"]["ranks"] == 2 and result["alone"]["ranks"] == 1
    assert result["ddp"]["reduction_ms"] > 0 and result["ddp"]["gradient_bytes"] > 0
    text = "\n".join(ddp.format_lines(result))
    assert "2 ranks" in text and "% of the distributed step" in text


def test_gather_workload_agrees_with_its_numpy_baseline():
    from gpugrad.bench import runner, workloads as W
    work = W.gather_step(50, 3, 40, set())     # repeated indices: the scatter-add must sum them
    value, grads = work.run()
    want_value, want_grad = work.baselines["numpy"]()
    np.testing.assert_allclose(value.numpy(), want_value, rtol=1e-4)
    np.testing.assert_allclose(next(iter(grads.values())).numpy(), want_grad, rtol=1e-5, atol=1e-5)
    assert "gather" in runner.WORKLOADS and "gather" in runner.FIXED_SHAPES
    for v in list(tf.variables.registered_variables()):
        v.dispose()


_MAPPED = """
import ctypes
import numpy as np
from gpugrad.bench import allocator

class Info(ctypes.Structure):   # glibc's struct mallinfo2
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = Info

def mapped_for_a_temporary():   # bytes glibc mapped afresh for one 4 MiB array
    before = mallinfo2().hblkhd
    a = np.ones(1 << 20, np.float32)
    return mallinfo2().hblkhd - before

loose = mapped_for_a_temporary()
said = allocator.make_steady()
print(loose, mapped_for_a_temporary(), said)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_steady_allocator_serves_large_temporaries_from_its_heap():
    import os
    import subprocess
    # glibc made to map every block above 128 KiB afresh (its state after some histories,
    # where each 4 MiB temporary is faulted in anew), until make_steady
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    done = subprocess.run([sys.executable, "-c", _MAPPED], env=env, capture_output=True, text=True)
    if done.returncode and "mallinfo2" in done.stderr:
        pytest.skip("no glibc 2.33+ here (mallinfo2)")
    loose, steady, said = done.stdout.split(maxsplit=2)
    assert int(loose) >= 4 << 20 and int(steady) == 0 and said.startswith("steady (glibc"), done.stderr


def test_the_report_says_what_the_allocator_was(tmp_path, capsys):
    result = _bench_json(tmp_path, "--workloads", "sum", "--allocator", "default")
    assert result["allocator"] == "default"
    assert "host allocator default" in capsys.readouterr().out
