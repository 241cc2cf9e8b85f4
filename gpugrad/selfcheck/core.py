"""What a check is, how one runs in isolation, and how arrays are compared.

A check is a function of a Context. It returns a one-line summary (and may fill ``data``
with measurements); it raises Skip when it cannot run here, CheckFailed (via Problems) when
what it proves is false, and anything else it raises counts as its failure too: one broken
check never stops the others.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


class Skip(Exception):
    """The check cannot run on this machine (the reason is its summary)."""


class CheckFailed(Exception):
    def __init__(self, summary: str, details: list[str] | None = None):
        super().__init__(summary)
        self.summary = summary
        self.details = details or []


@dataclass
class Outcome:
    name: str
    status: str
    summary: str
    seconds: float
    details: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "summary": self.summary,
                "seconds": round(self.seconds, 3), "details": self.details, "data": self.data}


@dataclass
class Check:
    name: str
    run: Callable[[dict], str]      # (data) -> summary; data collects measurements
    gpu_only: bool = False


def run_check(check: Check, gpu: bool) -> Outcome:
    """Run one check, turning whatever happens into an Outcome."""
    start = time.perf_counter()
    data: dict[str, Any] = {}
    if check.gpu_only and not gpu:
        return Outcome(check.name, SKIPPED, "skipped: no GPU", 0.0)
    try:
        summary = check.run(data)
        status, details = PASSED, []
    except Skip as exc:
        status, summary, details = SKIPPED, f"skipped: {exc}", []
    except CheckFailed as exc:
        status, summary, details = FAILED, exc.summary, exc.details
    except Exception as exc:  # noqa: BLE001 - isolation: an error is this check's failure
        status, summary = FAILED, f"{type(exc).__name__}: {_first_line(exc)}"
        details = traceback.format_exc().rstrip().splitlines()[-25:]
    return Outcome(check.name, status, summary, time.perf_counter() - start, details, data)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else "(no message)"


class Problems:
    """Collects the cases of one check that went wrong; raise_if_any fails the check naming
    the first of them (all of them go to the report's details)."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.cases = 0

    def case(self, label: str, problem: str | None) -> None:
        self.cases += 1
        if problem:
            self.items.append(f"{label}: {problem}")

    def error(self, label: str, exc: BaseException) -> None:
        self.cases += 1
        self.items.append(f"{label}: {type(exc).__name__}: {_first_line(exc)}")

    def raise_if_any(self) -> None:
        """Fail with a one-line summary; each problem's full text (a graph, say) goes to details."""
        if self.items:
            more = f" (and {len(self.items) - 1} more)" if len(self.items) > 1 else ""
            first = self.items[0].splitlines()[0]
            details = [line for item in self.items[:200] for line in item.splitlines()]
            raise CheckFailed(f"{len(self.items)} of {self.cases} cases wrong: {first}{more}", details)


def mismatch(got: Any, want: np.ndarray, rtol: float, atol: float = 0.0) -> str | None:
    """None when got equals want within |got - want| <= atol + rtol * |want| (NaN where want is
    NaN, the same infinities, exact for bool and int), else what differs, in a few words."""
    got = np.asarray(got)
    want = np.asarray(want)
    if got.shape != want.shape:
        return f"shape {got.shape}, expected {want.shape}"
    if got.dtype != want.dtype:
        return f"dtype {got.dtype}, expected {want.dtype}"
    if got.size == 0:
        return None
    if want.dtype.kind in "biu":
        bad = got != want
        if not bad.any():
            return None
        i = np.unravel_index(int(np.argmax(bad)), bad.shape)
        return (f"{int(bad.sum())} of {bad.size} elements differ, e.g. at {_index(i)}: "
                f"{got[i].item()!r} vs {want[i].item()!r}")
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    nan_g, nan_w = np.isnan(g), np.isnan(w)
    if (nan_g != nan_w).any():
        i = np.unravel_index(int(np.argmax(nan_g != nan_w)), g.shape)
        return f"NaN mismatch at {_index(i)}: {got[i].item()!r} vs {want[i].item()!r}"
    inf_w = np.isinf(w)
    if (np.isinf(g) != inf_w).any() or (g[inf_w] != w[inf_w]).any():
        return "infinities differ"
    finite = ~(nan_w | inf_w)
    with np.errstate(invalid="ignore"):   # inf - inf where both are the same infinity
        err = np.where(finite, np.abs(g - w), 0.0)
    tol = atol + rtol * np.abs(np.where(finite, w, 0.0))
    ratio = err / np.maximum(tol, np.finfo(np.float64).tiny)
    worst = int(np.argmax(ratio))
    if ratio.flat[worst] <= 1.0:
        return None
    i = np.unravel_index(worst, g.shape)
    return (f"{int((ratio > 1).sum())} of {g.size} elements off, worst at {_index(i)}: "
            f"{got[i].item()!r} vs {want[i].item()!r} (rtol {rtol:g}, atol {np.max(atol):g})")


def _index(i: tuple) -> list[int]:
    return [int(k) for k in i]


def scaled_atol(want: np.ndarray, rtol: float) -> float:
    """An absolute tolerance of rtol times the array's largest finite magnitude: sums and
    gradients with cancellation are accurate relative to their terms, not to the result."""
    w = np.asarray(want, dtype=np.float64)
    finite = w[np.isfinite(w)]
    return rtol * float(np.abs(finite).max()) if finite.size else 0.0
