#!/usr/bin/env bash
# Install flexlock as a user would, from the built files only (the index serves the
# third-party packages), each set in a fresh venv, and use it:
#   flexlock-core alone, on the oldest Python (3.10): runlock() writes a run sheet;
#   flexlock-cli alone: a @clicfg task list runs, `flexlock --help` names the missing plugins;
#   flexlock[all] from the meta wheel: the README demo pipeline runs.
# Builds dist/ first (scripts/build-dists.sh) unless DIST_DIR points at built files.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
t0=$SECONDS
if [[ -z ${DIST_DIR:-} ]]; then
  DIST_DIR=$ROOT/dist bash scripts/build-dists.sh >/dev/null
  DIST_DIR=$ROOT/dist
fi
echo "[install-check] dists built after $((SECONDS - t0)) s"
PY310=${PY310:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")/versions/3.10.13/bin/python3.10}
[[ -x $PY310 ]] || PY310=$(ls "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.10.*/bin/python3.10 | tail -1)
work=$(mktemp -d /tmp/flexlock-install-check.XXXXXX)
trap 'rm -rf "$work"' EXIT

fresh() {  # fresh NAME PYTHON REQUIREMENT: a venv with REQUIREMENT from $DIST_DIR
  "$2" -m venv "$work/$1"
  "$work/$1/bin/python" -m pip install -q --disable-pip-version-check --find-links "$DIST_DIR" "$3"
}

# 1. flexlock-core alone on Python 3.10.
fresh core "$PY310" flexlock-core
mkdir "$work/core-run" && cd "$work/core-run"
"$work/core/bin/python" - <<'PY'
import attrs
from flexlock.core import load, runlock

@attrs.define
class Config:
    threshold: float = 0.5
    save_dir: str = "results/one"

with runlock(Config()) as lock:
    pass
sheet = load("results/one/run.lock")
assert sheet.status == "succeeded", sheet.status
print("core alone (3.10): run.lock written,", sheet.status)
PY
cd "$ROOT"
echo "[install-check] core alone done after $((SECONDS - t0)) s"

# 2. flexlock-cli alone: a task list, and the missing plugins named.
fresh cli python3 flexlock-cli
mkdir "$work/cli-run" && cd "$work/cli-run"
cat > process.py <<'PY'
import attrs
from flexlock.cli import clicfg

@attrs.define
class Config:
    param: int = 0
    save_dir: str = "results/p${param}"

@clicfg
def main(cfg: Config) -> None:
    print("task", cfg.param)

if __name__ == "__main__":
    main(Config())
PY
printf '1\n2\n3\n' > tasks.txt
"$work/cli/bin/python" process.py --tasks tasks.txt --task_to param
for n in 1 2 3; do test -f "results/p$n/run.lock"; done
help=$("$work/cli/bin/flexlock" --help)
grep -q "pip install flexlock-mlflow" <<<"$help"
grep -q "pip install flexlock-slurm" <<<"$help"
if missing=$("$work/cli/bin/flexlock" mlflow ls 2>&1); then exit 1; fi
grep -q "provided by flexlock-mlflow, which is not installed: pip install flexlock-mlflow" <<<"$missing"
cd "$ROOT"
echo "[install-check] cli alone done after $((SECONDS - t0)) s"

# 3. flexlock[all] from the meta wheel: the README demo.
fresh all python3 "flexlock[all]"
cd examples/pipeline  # as scripts/demo.sh does: its results/ are git-ignored
PATH="$work/all/bin:$PATH" "$work/all/bin/python" run_demo.py
cd "$ROOT"
echo "[install-check] flexlock[all] demo done after $((SECONDS - t0)) s"
