#!/usr/bin/env bash
# Install every flexlock distribution (editable) plus the test tools into ./.venv,
# then run the whole test suite. Extra arguments go to pytest.
#
# Services: tests that need a Slurm cluster use the one started by
# scripts/slurm-local/start-slurm.sh (sourcing its env.sh); rclone and git are
# used from PATH; MLflow servers are started by the tests themselves. With
# FLEXLOCK_REQUIRE_SERVICES=1 (set by .ci/run) a missing service fails the run
# instead of skipping its tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then "$PYTHON" -m venv .venv; fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check \
    -e ./flexlock-core -e ./flexlock-cli -e ./flexlock-mlflow -e ./flexlock-slurm \
    -r requirements-test.txt
SLURM_ENV=${SLURM_LOCAL_DIR:-/tmp/slurm-local}/env.sh
if [[ -z ${SLURM_CONF:-} && -f $SLURM_ENV ]]; then source "$SLURM_ENV"; fi
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python -m pytest "$@"
