"""Packaging: the kernel snippets, py.typed and the LICENSE ship inside the package (a plain
`pip install .` finds them); PEP 639 license metadata; gpugrad.__version__; the CUDA extras
bring CuPy's CUDA toolkit wheels."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gpugrad

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = (ROOT / "pyproject.toml").read_text()


def _setuptools_supports_pep639() -> bool:
    setuptools = pytest.importorskip("setuptools")
    major = int(re.match(r"\d+", setuptools.__version__).group())
    return major >= 77


def test_pip_install_ships_the_kernels(tmp_path):
    pytest.importorskip("wheel")
    if not _setuptools_supports_pep639():
        pytest.skip("building gpugrad needs setuptools>=77 (PEP 639 license metadata); "
                    "pip install -e '.[test]' installs it")
    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(ROOT)],
        capture_output=True, text=True, cwd=tmp_path)
    assert build.returncode == 0, build.stderr[-2000:]
    assert (target / "gpugrad" / "kernels" / "elementwise" / "exp.cu").is_file()
    assert (target / "gpugrad" / "py.typed").is_file()
    dist_info = next(target.glob("gpugrad-*.dist-info"))
    metadata = (dist_info / "METADATA").read_text()
    assert "License-Expression: Apache-2.0" in metadata
    assert "License-File: LICENSE" in metadata
    assert (dist_info / "licenses" / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
    probe = (
        "import gpugrad as tf, gpugrad.core.snippets as s\n"
        "assert 'site' in str(s.kernels_dir()), s.kernels_dir()\n"
        "p = tf.variable(tf.tensor1d([9, 6])); r = tf.tensor1d([3, 4])\n"
        "v, g = tf.variable_grads(lambda: tf.sum(tf.sigmoid(p * r)))\n"
        "import importlib.metadata as m\n"
        "assert tf.__version__ == m.version('gpugrad'), (tf.__version__, m.version('gpugrad'))\n"
        "print(s.kernels_dir())\n")
    env = dict(os.environ, PYTHONPATH=str(target), GPUGRAD_BACKEND="numpy")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr[-2000:]


def test_license_is_the_apache_2_text_declared_as_pep_639():
    text = (ROOT / "LICENSE").read_text()
    for part in ("Apache License", "Version 2.0, January 2004", "TERMS AND CONDITIONS FOR USE",
                 "9. Accepting Warranty or Additional Liability.", "END OF TERMS AND CONDITIONS"):
        assert part in text, part
    assert re.search(r'(?m)^license = "Apache-2.0"$', PYPROJECT)
    assert re.search(r'(?m)^license-files = \["LICENSE"\]$', PYPROJECT)
    # PEP 639 needs setuptools 77 to build, in isolation and in the test extra alike.
    assert 'requires = ["setuptools>=77"]' in PYPROJECT
    assert '"setuptools>=77"' in PYPROJECT.split("test = [", 1)[1].split("]", 1)[0]


def test_cuda_extras_bring_the_cuda_toolkit_wheels():
    assert 'cuda12 = ["cupy-cuda12x[ctk]>=13"]' in PYPROJECT
    assert 'cuda13 = ["cupy-cuda13x[ctk]>=14"]' in PYPROJECT


def test_version_and_py_typed():
    version = re.search(r'(?m)^version = "([^"]+)"$', PYPROJECT).group(1)
    assert gpugrad.__version__ == version
    from gpugrad._version import version_text
    assert version_text() == f"gpugrad {version}"
    assert (ROOT / "gpugrad" / "py.typed").is_file()
    assert '"py.typed"' in PYPROJECT.split("[tool.setuptools.package-data]", 1)[1]
