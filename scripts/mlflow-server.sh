#!/usr/bin/env bash
# A tracking server for sweeps that outgrow one machine: mlflow server with a SQL backend
# store and a proxied artifact store (clients upload and download artifacts through the
# server) under one directory, listening on 127.0.0.1 unless told otherwise.
#   scripts/mlflow-server.sh                      # ./mlflow-server/{mlflow.db,artifacts}, port 5000
#   scripts/mlflow-server.sh /srv/mlflow          # another directory
#   MLFLOW_SERVER_PORT=5050 scripts/mlflow-server.sh
#   MLFLOW_SERVER_HOST=0.0.0.0 scripts/mlflow-server.sh /srv/mlflow --app-name basic-auth
#   MLFLOW_BACKEND_STORE_URI=postgresql://mlflow@db-host/mlflow scripts/mlflow-server.sh /srv/mlflow
# Arguments after the directory go to mlflow server as they are (--workers, --app-name,
# --allowed-hosts, ...). Prints the override to use on stdout, e.g.
#   tracking.uri=http://127.0.0.1:5000
# and keeps running in the foreground (it is the server); Ctrl-C stops it.
set -euo pipefail
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi
dir="${1:-mlflow-server}"
shift || true
host="${MLFLOW_SERVER_HOST:-127.0.0.1}"
port="${MLFLOW_SERVER_PORT:-5000}"
mkdir -p "${dir}/artifacts"
dir="$(cd "${dir}" && pwd)"  # absolute: the server may be started from anywhere
# MLflow's own variable picks another SQL database (PostgreSQL for many writers).
store="${MLFLOW_BACKEND_STORE_URI:-sqlite:///${dir}/mlflow.db}"
echo "MLflow tracking server on http://${host}:${port}; artifacts in ${dir}/artifacts;" \
     "Ctrl-C to stop" >&2
# the address clients use: this host's name when listening on every interface
[[ "${host}" == "0.0.0.0" ]] && client_host="$(hostname -f)" || client_host="${host}"
echo "tracking.uri=http://${client_host}:${port}"
exec mlflow server --backend-store-uri "${store}" --artifacts-destination "${dir}/artifacts" \
    --host "${host}" --port "${port}" "$@"
