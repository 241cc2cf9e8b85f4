"""gpugrad.__version__: the installed distribution's version, from one place (pyproject.toml).

A source checkout on PYTHONPATH (tests, CI before install) has no installed metadata of its
own, and could even see a different installed gpugrad's: so where pyproject.toml sits next to
the package, its version is the one that describes this code. An installed copy reads
importlib.metadata. Neither available: "0+unknown" (a valid PEP 440 local version)."""
from __future__ import annotations

import re
from pathlib import Path

_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _from_pyproject() -> str | None:
    try:
        text = _PYPROJECT.read_text(encoding="utf-8")
    except OSError:
        return None
    if not re.search(r'(?m)^name\s*=\s*"gpugrad"\s*$', text):
        return None
    found = re.search(r'(?m)^version\s*=\s*"([^"]+)"\s*$', text)
    return found.group(1) if found else None


def _from_metadata() -> str | None:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - Python < 3.8
        return None
    try:
        return version("gpugrad")
    except PackageNotFoundError:
        return None


__version__ = _from_pyproject() or _from_metadata() or "0+unknown"


def version_text() -> str:
    """What `gpugrad --version` prints."""
    return f"gpugrad {__version__}"
