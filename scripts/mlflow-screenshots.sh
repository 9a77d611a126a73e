#!/usr/bin/env bash
# Screenshots of the real MLflow UI for docs/mlflow.md: starts `mlflow server` on
# 127.0.0.1 (throwaway SQLite store), runs the example pipeline's prepare + train
# stages in a temp copy, logs the train runs twice with `flexlock mlflow log
# --delete-superseded` (so the default view shows one row per save dir), and takes
# headless-Chromium screenshots of the experiment's runs page and of one run page.
#
#   bash scripts/mlflow-screenshots.sh [OUT_DIR]     # default docs/img
#
# Needs: the repo's venv (`bash scripts/demo.sh` makes one; full `mlflow` for the
# server) and Debian's `chromium` (`apt-get install -y chromium`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$(realpath -m "${1:-docs/img}")
PY=${PYTHON:-$ROOT/.venv/bin/python}
MLFLOW=$(dirname "$PY")/mlflow
CHROMIUM=${CHROMIUM:-chromium}
EPOCHS=${EPOCHS:-4000}   # ~1-2 s per train run, so the UI's durations are visible
mkdir -p "$OUT"
work=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n $server_pid ]]; then kill -TERM -- "-$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

cp -r examples/pipeline "$work/pipeline"
cd "$work/pipeline"
rm -rf results mlflow.db mlruns
printf 'results/\nmlruns/\nmlflow.db\n__pycache__/\n' > .gitignore
git init -q -b main && git add . && git -c user.name=demo -c user.email=demo@example.com commit -qm pipeline

port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
# The UI opens its assistant panel on first load when the host is localhost/127.0.0.1;
# Chromium reaches the loopback server as `mlflow.test` instead. The server's Host-header
# check would refuse that name, so it is off: this server only listens on 127.0.0.1 and
# lives for this script.
MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE=true MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
    setsid "$MLFLOW" server --host 127.0.0.1 --port "$port" --workers 1 \
    --backend-store-uri "sqlite:///$work/mlflow.db" --artifacts-destination "$work/artifacts" \
    > "$work/server.log" 2>&1 &
server_pid=$!
export MLFLOW_TRACKING_URI=$url

"$PY" prepare.py --config conf/pipeline.yml --experiment prepare
"$PY" train.py --config conf/pipeline.yml --experiment train --tasks conf/lrs.txt \
    --task_to optim.lr -o optim.epochs="$EPOCHS"
for _ in $(seq 120); do curl -sf "$url/health" > /dev/null && break; sleep 1; done
curl -sf "$url/health" > /dev/null || { cat "$work/server.log"; exit 1; }
for _ in 1 2; do  # the second log supersedes (and soft-deletes) the first
    "$PY" -m flexlock.cli._main mlflow log --experiment pipeline --delete-superseded \
        log_runs.py:log_run results/train/*/
done

ids=$("$PY" - <<'EOF'
from mlflow import MlflowClient
client = MlflowClient()
experiment = client.get_experiment_by_name("pipeline")
run = client.search_runs([experiment.experiment_id], order_by=["attributes.run_name ASC"])[0]
print(experiment.experiment_id, run.info.run_id)
EOF
)
read -r experiment_id run_id <<< "$ids"
shoot() {  # shoot FILE HEIGHT URL_PATH
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --host-resolver-rules="MAP mlflow.test 127.0.0.1" --window-size="1400,$2" \
        --virtual-time-budget=20000 --screenshot="$OUT/$1" "http://mlflow.test:$port/#$3" \
        2> "$work/chromium.log" || { cat "$work/chromium.log"; exit 1; }
    echo "wrote $OUT/$1"
}
shoot mlflow-runs.png 560 "/experiments/$experiment_id/runs"
shoot mlflow-run.png 1100 "/experiments/$experiment_id/runs/$run_id"
