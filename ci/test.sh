#!/usr/bin/env bash
# The test command: installs what the tests need into a venv, then runs the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[test]"
python -m pytest tests "$@"
