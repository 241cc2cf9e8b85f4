"""gpugrad.distributed: sharded batches, the packed reduction (against stand-ins for MPI and for
NCCL, in this process) and real programs under `mpiexec -n 2` (tests/distributed_programs/)."""
from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import gpugrad as tf
from gpugrad import distributed as dist
from gpugrad.distributed import state as _state
from gpugrad.distributed.nccl import NcclTransport
from gpugrad.distributed.packing import Entry, PackedBroadcast, PackedReduction, buckets

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ROOT / "tests" / "distributed_programs"


# --- batches(shard=...) ----------------------------------------------------------------------


@pytest.mark.parametrize("n,batch,size,shuffle,drop", [
    (96, 32, 2, True, False), (100, 32, 2, True, False), (101, 16, 3, False, False),
    (100, 32, 4, True, True), (7, 7, 7, False, False), (50, 10, 1, True, False)])
def test_shards_cover_every_example_once_per_epoch(n, batch, size, shuffle, drop):
    x = np.arange(n)
    full = [b.numpy().tolist() for b in tf.nn.batches(x, None, batch, shuffle, seed=3,
                                                        drop_remainder=drop)]
    parts = [[b.numpy().tolist() for b in tf.nn.batches(x, None, batch, shuffle, seed=3,
                                                          drop_remainder=drop, shard=(r, size))]
             for r in range(size)]
    assert {len(p) for p in parts} == {len(full)}          # every rank makes the same steps
    for step, global_batch in enumerate(full):              # rank by rank, the global batch
        assert sum((p[step] for p in parts), []) == global_batch
        assert max(len(p[step]) for p in parts) - min(len(p[step]) for p in parts) <= 1
    seen = sorted(sum((sum(p, []) for p in parts), []))
    assert seen == sorted(sum(full, []))
    if not drop:
        assert seen == list(range(n))


def test_a_last_batch_smaller_than_the_world_is_skipped_by_every_rank():
    x, y = np.arange(65, dtype=np.float32), np.arange(65) % 3
    parts = [list(tf.nn.batches(x, y, 32, shard=(r, 2))) for r in range(2)]
    assert [len(p) for p in parts] == [2, 2]                # 64 rows; the 65th alone is skipped
    assert [xb.shape for xb, _ in parts[1]] == [(16,), (16,)]


@pytest.mark.parametrize("shard", [(2, 2), (-1, 2), (0, 0), (0.0, 2), "0/2", (0, 2, 1), (True, 2)])
def test_bad_shards_are_refused(shard):
    with pytest.raises(ValueError, match="shard must be"):
        next(tf.nn.batches(np.zeros(4), None, 2, shard=shard))


def test_a_global_batch_smaller_than_the_world_is_refused():
    with pytest.raises(ValueError, match="at least 4"):
        next(tf.nn.batches(np.zeros(8), None, 2, shard=(0, 4)))


# --- a world of one ----------------------------------------------------------------------------


@pytest.fixture
def world_of_one(monkeypatch):
    for var in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK",
                "PMIX_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_state, "_world", None)
    monkeypatch.setattr(_state, "_device_transport", None)
    yield dist.init()


def test_without_a_launcher_init_makes_a_world_of_one_without_mpi(world_of_one):
    assert (dist.rank(), dist.size(), dist.local_rank()) == (0, 1, 0)
    assert "mpi4py" not in sys.modules
    assert dist.init() is world_of_one
    dist.barrier()
    t = tf.tensor([[1.5, 2.0]])
    assert dist.all_reduce(t, "mean").numpy().tolist() == [[1.5, 2.0]]
    assert dist.broadcast(t, root=0).numpy().tolist() == [[1.5, 2.0]]
    with pytest.raises(ValueError, match="root must be a rank in"):
        dist.broadcast(t, root=1)
    with pytest.raises(ValueError, match="op must be 'sum' or 'mean'"):
        dist.all_reduce(t, "max")


def test_rank_before_init_says_to_call_init(monkeypatch):
    monkeypatch.setattr(_state, "_world", None)
    with pytest.raises(RuntimeError, match="call dist.init"):
        dist.rank()


def _model(seed):
    return tf.nn.Sequential([tf.nn.Dense(4, 8, "relu", seed=seed), tf.nn.Dense(8, 2, seed=seed + 1)])


def test_alone_the_distributed_optimizer_is_the_wrapped_optimizer(world_of_one):
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((16, 4)).astype(np.float32), rng.integers(0, 2, 16)
    runs = []
    for wrap in (False, True):
        model = _model(5)
        opt = tf.train.adam(0.05)
        opt = dist.DistributedOptimizer(opt) if wrap else opt
        costs = [opt.minimize(lambda: tf.losses.softmax_cross_entropy(y, model(x)),
                              return_cost=True, var_list=model.trainable_variables).item()
                 for _ in range(3)]
        runs.append((costs, [v.numpy() for v in model.trainable_variables], opt.iterations))
    assert runs[0][0] == runs[1][0] and runs[0][2] == runs[1][2] == 3
    assert all((a == b).all() for a, b in zip(runs[0][1], runs[1][1]))


def test_the_wrapper_passes_the_optimizer_through_and_refuses_to_wrap_twice(world_of_one):
    opt = dist.DistributedOptimizer(tf.train.sgd(0.1))
    opt.learning_rate = 0.5
    assert opt.optimizer.learning_rate == 0.5 and opt.iterations == 0
    with pytest.raises(TypeError, match="already distributed"):
        dist.DistributedOptimizer(opt)
    with pytest.raises(TypeError, match="wraps a tf.train optimizer"):
        dist.DistributedOptimizer(object())


# --- the packed reduction, with stand-ins for the other ranks -----------------------------------


class FakeMPI:
    """Rank `rank` of a simulated world: the other ranks' rows come from their packed buffers."""

    def __init__(self, rank, others):
        self.rank, self.size, self.others, self.calls = rank, len(others), others, []

    def start_allgather(self, rows, what):
        k = len(self.calls)
        self.calls.append((rows.shape, str(rows.dtype)))
        for r, packed in enumerate(self.others):
            if r != self.rank:
                rows[r] = packed[k]
        return SimpleNamespace(wait=lambda: None)


def _grads(rank):
    """Two float32 gradients and a float64 one, whose float32 sums depend on the order."""
    big = np.float32(1e8) if rank == 0 else np.float32(-1e8) if rank == 1 else np.float32(1.0)
    return [Entry("b/kernel", np.full((3, 2), big, np.float32) + np.float32(rank)),
            Entry("a/bias", np.arange(4, dtype=np.float32) * np.float32(0.1 * (rank + 1))),
            Entry("scale", np.array(2.0 ** -rank))]


def _simulate(size, bucket_bytes):
    packed = [PackedReduction(_grads(r), r, size, bucket_bytes) for r in range(size)]
    own = [[rows[r].copy() for _, rows in p.groups] for r, p in enumerate(packed)]
    transports = [FakeMPI(r, own) for r in range(size)]
    return [p.run(t, "mean") for p, t in zip(packed, transports)], transports


def test_every_rank_sums_in_rank_order_and_gets_bitwise_the_same_mean():
    results, transports = _simulate(3, 1 << 20)
    grads = [_grads(r) for r in range(3)]
    for i, name in enumerate(["b/kernel", "a/bias", "scale"]):
        g = [grads[r][i].buf for r in range(3)]
        expected = ((g[0] + g[1]) + g[2]) / 3        # the documented order, not another
        for result in results:
            assert result[name].dtype == g[0].dtype and result[name].shape == g[0].shape
            assert result[name].tobytes() == expected.tobytes(), name
    # kernel[0, 0] is 1e8, -1e8 (+1 rounds away) and 3 on ranks 0, 1, 2: in float32,
    # (1e8 + -1e8) + 3 = 3 but 1e8 + (-1e8 + 3) = 0, so the order is observable
    g = [grads[r][0].buf[0, 0] for r in range(3)]
    assert g[0] + (g[1] + g[2]) == 0
    assert results[0]["b/kernel"][0, 0] == np.float32(1.0)
    # one collective per dtype, float32 then float64, names sorted within
    assert transports[0].calls == [((3, 10), "float32"), ((3, 1), "float64")]


def test_gradients_above_the_threshold_go_in_several_buckets():
    results, transports = _simulate(2, 24)   # 24 bytes: the 4-float bias, then the 6-float kernel
    assert transports[1].calls == [((2, 4), "float32"), ((2, 6), "float32"), ((2, 1), "float64")]
    reference, _ = _simulate(2, 1 << 20)
    assert all(results[0][k].tobytes() == reference[0][k].tobytes() for k in reference[0])


def test_packing_order_is_fixed_and_names_must_be_unique():
    order = [[e.key for e in b] for b in buckets(list(reversed(_grads(0))))]
    assert order == [["a/bias", "b/kernel"], ["scale"]]
    with pytest.raises(ValueError, match="two entries named 'w'"):
        buckets([Entry("w", np.zeros(2, np.float32)), Entry("w", np.zeros(2, np.float32))])


# --- the NCCL transport, driven by a stand-in communicator ---------------------------------------

NCCL_CONSTANTS = SimpleNamespace(NCCL_INT8=0, NCCL_UINT8=1, NCCL_INT32=2, NCCL_UINT32=3,
                                 NCCL_INT64=4, NCCL_UINT64=5, NCCL_FLOAT16=6, NCCL_FLOAT32=7,
                                 NCCL_FLOAT64=8)
ITEMSIZE = {0: 1, 1: 1, 2: 4, 3: 4, 4: 8, 5: 8, 6: 2, 7: 4, 8: 8}


class FakeNcclComm:
    """cupy.cuda.nccl.NcclCommunicator's allGather and bcast over raw host pointers; the other
    ranks' bytes come from `peers` (rank -> bytes of its packed row, or of root's buffer)."""

    def __init__(self, rank, peers):
        self.rank, self.peers, self.log = rank, peers, []

    def allGather(self, send, recv, count, dtype, stream):
        nbytes = count * ITEMSIZE[dtype]
        assert send == recv + self.rank * nbytes, "not in place"
        self.log.append(("allGather", count, dtype, stream))
        for r, data in self.peers.items():
            ctypes.memmove(recv + r * nbytes, data, nbytes)

    def bcast(self, buf, count, dtype, root, stream):
        self.log.append(("bcast", count, dtype, root, stream))
        if root != self.rank:
            ctypes.memmove(buf, self.peers[root], count * ITEMSIZE[dtype])


def test_the_nccl_path_reduces_in_place_on_the_stream_up_to_the_nccl_call():
    mine = [Entry("w", np.array([1.0, 2.0, 3.0], np.float32)), Entry("v", np.array(4.0))]
    peer = PackedReduction([Entry("w", np.array([10.0, 20.0, 30.0], np.float32)),
                            Entry("v", np.array(40.0))], 0, 2)
    peers = {0: [rows[0].tobytes() for _, rows in peer.groups]}
    comm = FakeNcclComm(1, {})
    transport = NcclTransport(comm, 1, 2, NCCL_CONSTANTS, stream=lambda: 0xC0FFEE)
    packed = PackedReduction(mine, 1, 2)
    original = comm.allGather

    def gather(send, recv, count, dtype, stream):   # this call's peer bytes: float32, then float64
        comm.peers = {0: peers[0][len(comm.log)]}
        original(send, recv, count, dtype, stream)

    comm.allGather = gather
    out = packed.run(transport, "sum")
    assert out["w"].tolist() == [11.0, 22.0, 33.0] and out["v"].tolist() == 44.0
    assert comm.log == [("allGather", 3, 7, 0xC0FFEE), ("allGather", 1, 8, 0xC0FFEE)]
    assert transport.calls == 2

    root_bytes = np.array([True, False, True]).tobytes()
    comm2 = FakeNcclComm(1, {0: root_bytes})
    flags = PackedBroadcast([Entry("flags", np.zeros(3, bool))], 1, 0)
    got = flags.run(NcclTransport(comm2, 1, 2, NCCL_CONSTANTS, stream=lambda: 7), "test")
    assert got["flags"].tolist() == [True, False, True]
    assert comm2.log == [("bcast", 3, 1, 0, 7)]      # any dtype travels as uint8 bytes


def test_nccl_refuses_dtypes_it_cannot_reduce():
    transport = NcclTransport(FakeNcclComm(0, {}), 0, 2, NCCL_CONSTANTS, stream=lambda: 0)
    with pytest.raises(TypeError, match="NCCL cannot reduce complex64"):
        transport.start_allgather(np.zeros((2, 1), np.complex64), "test")


# --- real MPI: programs under mpiexec -n 2 --------------------------------------------------------


def _mpiexec():
    local = Path(sys.executable).parent / "mpiexec"   # the venv's, from the mpich wheel
    found = str(local) if local.exists() else shutil.which("mpiexec")
    if not found:
        return None, "mpiexec not found (pip install \"gpugrad[dist]\" installs MPICH's)"
    if importlib.util.find_spec("mpi4py") is None:
        return None, "mpi4py is not installed (pip install \"gpugrad[dist]\")"
    return found, None


MPIEXEC, NO_MPI = _mpiexec()
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason=f"no MPI: {NO_MPI}")


def _env(backend="numpy"):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "OMPI_", "HYDRA_", "MPI_LOCAL"))}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               GPUGRAD_BACKEND=backend, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               HYDRA_LAUNCHER="fork",                     # MPICH: local processes, no ssh
               OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return env


def _run(args, ranks=2, timeout=60, backend="numpy"):
    command = ([MPIEXEC, "-n", str(ranks)] if ranks else []) + [sys.executable, *map(str, args)]
    start = time.monotonic()
    proc = subprocess.run(command, env=_env(backend), capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL)
    return proc, time.monotonic() - start


def _train(tmp_path, ranks, bucket_bytes=None, backend="numpy"):
    out = tmp_path / f"{ranks}-{bucket_bytes}-{backend}"
    out.mkdir()
    args = [PROGRAMS / "train.py", out] + (["--bucket-bytes", bucket_bytes] if bucket_bytes else [])
    proc, _ = _run(args, ranks, backend=backend)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [dict(np.load(out / f"rank{r}.npz")) for r in range(max(ranks, 1))]


@needs_mpi
@pytest.mark.parametrize("bucket_bytes", [None, 256])
def test_two_ranks_train_like_one_process_with_bitwise_identical_variables(tmp_path, bucket_bytes):
    (alone,) = _train(tmp_path, 0)
    rank0, rank1 = _train(tmp_path, 2, bucket_bytes)
    assert set(rank0) == set(alone) == {"costs", "hidden.kernel", "hidden.bias", "out.kernel",
                                        "out.bias", "temperature"}
    for name in alone:
        assert rank0[name].tobytes() == rank1[name].tobytes(), name     # bitwise, every rank
        # the same global batches: equal up to float32 rounding of a different summation order
        np.testing.assert_allclose(rank0[name], alone[name], rtol=2e-5, atol=2e-6, err_msg=name)
    assert len(alone["costs"]) == 9


@needs_mpi
def test_collectives_agree_on_every_rank_and_shape_mismatches_stop_all(tmp_path):
    proc, _ = _run([PROGRAMS / "collectives.py", tmp_path])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rank0, rank1 = [(tmp_path / f"rank{r}.txt").read_text().split() for r in range(2)]
    assert rank0[0] == "ok" and rank0 == rank1                          # bitwise the same


@needs_mpi
@pytest.mark.parametrize("mode,expected", [
    ("raise", "rank 1 failed: ValueError: bad input on purpose (in minimize() step 2"),
    ("crash", "rank 1: failed outside a distributed step (RuntimeError: data loader broke"),
    ("hang", "rank 0: timed out after 2 s waiting for the other ranks in the status exchange "
             "of minimize() step 2")])
def test_a_failing_rank_stops_every_rank_with_a_message_naming_it(mode, expected, tmp_path):
    proc, seconds = _run([PROGRAMS / "fail.py", mode, 2, tmp_path], timeout=45)
    assert proc.returncode != 0
    assert expected in proc.stderr, proc.stderr
    assert "finished" not in proc.stdout          # no rank went on past the failure
    raised = sorted(p.name for p in tmp_path.iterdir())
    if mode == "raise":                           # each rank raised it (and so exited with 1)
        assert raised == ["rank0.txt", "rank1.txt"]
        assert all(expected in (tmp_path / name).read_text() for name in raised)
    else:                                         # aborted: no rank got as far as raising
        assert raised == []
    assert seconds < 40


@needs_mpi
def test_digits_ddp_example_trains_under_mpiexec(tmp_path):
    pytest.importorskip("sklearn")
    proc, _ = _run([ROOT / "examples" / "digits_ddp.py", "--epochs", "3"], timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    final = [line for line in proc.stdout.splitlines() if line.startswith("final test accuracy")]
    assert len(final) == 1, proc.stdout                     # rank 0 reports, once
    assert float(final[0].split()[3]) >= 0.9, final


def _gpus() -> int:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:
        return 0


@needs_mpi
@pytest.mark.skipif(_gpus() < 2, reason="NCCL needs a GPU per rank: fewer than 2 GPUs here")
def test_two_gpus_over_nccl_keep_bitwise_identical_variables(tmp_path):
    rank0, rank1 = _train(tmp_path, 2, backend="cupy")
    (alone,) = _train(tmp_path, 0, backend="cupy")
    for name in alone:
        assert rank0[name].tobytes() == rank1[name].tobytes(), name
        np.testing.assert_allclose(rank0[name], alone[name], rtol=2e-5, atol=2e-6, err_msg=name)
