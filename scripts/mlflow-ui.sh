#!/usr/bin/env bash
# Start the MLflow UI on this project's store, listening on 127.0.0.1 only; once it answers,
# print the address of the latest sweep (or run) in MLflow's training view.
#   scripts/mlflow-ui.sh                      # sqlite:///mlflow.db, http://127.0.0.1:5000
#   scripts/mlflow-ui.sh sqlite:///other.db   # another store
#   MLFLOW_UI_PORT=5050 scripts/mlflow-ui.sh  # another port (the runs' printed addresses
#                                             # follow MLFLOW_UI_PORT too)
#   MLFLOW_UI_WORKERS=2 scripts/mlflow-ui.sh  # more server processes (default 1: it starts
#                                             # in seconds and serves one person well)
# MLFLOW_UI_HOST=0.0.0.0 exposes it to the network: put a shared server behind
# authentication instead (mlflow server --app-name basic-auth, see the README).
# Ctrl-C stops it.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi
store="${1:-sqlite:///mlflow.db}"
host="${MLFLOW_UI_HOST:-127.0.0.1}"
port="${MLFLOW_UI_PORT:-5000}"
workers="${MLFLOW_UI_WORKERS:-1}"
[[ "${host}" == "0.0.0.0" ]] && ui_host="127.0.0.1" || ui_host="${host}"
# MLflow's server-side jobs (GenAI scorers, trace archival: a job runner and its
# processes) do nothing for training runs; set this to true to have them anyway.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
echo "Starting the MLflow UI on http://${host}:${port} (store: ${store})..." >&2
# the server's own lines go to stderr (no line per request); stdout is the address
mlflow ui --backend-store-uri "${store}" --host "${host}" --port "${port}" \
    --workers "${workers}" --uvicorn-opts "--no-access-log" >&2 &
server=$!
trap 'kill "${server}" 2>/dev/null; wait "${server}" 2>/dev/null' INT TERM EXIT
# the same python as mlflow's (the project's environment): waits for /health, then prints
python -m scratchnet.tracking.ui --store "${store}" --ui "http://${ui_host}:${port}" \
    || exit 1
wait "${server}"
