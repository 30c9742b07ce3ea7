#!/usr/bin/env bash
# Open the MLflow UI on this project's store, listening on 127.0.0.1 only.
#   scripts/mlflow-ui.sh                      # sqlite:///mlflow.db, http://127.0.0.1:5000
#   scripts/mlflow-ui.sh sqlite:///other.db   # another store
#   MLFLOW_UI_PORT=5050 scripts/mlflow-ui.sh  # another port
# MLFLOW_UI_HOST=0.0.0.0 exposes it to the network: put a shared server behind
# authentication instead (mlflow server --app-name basic-auth, see the README).
set -euo pipefail
store="${1:-sqlite:///mlflow.db}"
host="${MLFLOW_UI_HOST:-127.0.0.1}"
port="${MLFLOW_UI_PORT:-5000}"
echo "MLflow UI on http://${host}:${port} (store: ${store}); Ctrl-C to stop" >&2
exec mlflow ui --backend-store-uri "${store}" --host "${host}" --port "${port}"
