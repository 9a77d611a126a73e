#!/usr/bin/env bash
# Install every flexlock distribution (editable) into ./.venv and run the example
# pipeline in examples/pipeline (local executor, local MLflow store). Run it
# twice: the second time finished stages are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then "$PYTHON" -m venv .venv; fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check \
    -e ./flexlock-core -e ./flexlock-cli -e ./flexlock-mlflow -e ./flexlock-slurm
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python examples/pipeline/run_demo.py
