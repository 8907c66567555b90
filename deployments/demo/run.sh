#!/usr/bin/env bash
# The `make run` demo: start the worker, hire one person from the sample
# roster, print where to watch it, and keep the worker running until Ctrl-C.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
DATA_DIR="${DATA_DIR:-$ROOT/.data}"
# E100002 is an engineer: the demo policy gives them an LDAP entry, a
# PostgreSQL role and a SCIM account, so all three applications show up.
EMPLOYEE="${DEMO_EMPLOYEE:-E100002}"
LOG="$DATA_DIR/log/worker.log"
mkdir -p "$DATA_DIR/log"

bin/worker >>"$LOG" 2>&1 &
worker=$!
stop_worker() {
  trap - INT TERM
  kill -TERM "$worker" 2>/dev/null || true
  wait "$worker" 2>/dev/null || true
  echo
  echo "Worker stopped. The stack keeps running: 'make stack-down' stops it."
  exit 0
}
trap stop_worker INT TERM

echo "Worker started (log: $LOG)."
echo "Hiring $EMPLOYEE from deployments/demo/roster.csv ..."
bin/starter hire --roster deployments/demo/roster.csv --employee-id "$EMPLOYEE" --wait
echo
bin/starter status "$EMPLOYEE"
echo
echo "Watch it in the Temporal UI: ${TEMPORAL_UI_URL:-http://127.0.0.1:8233}/namespaces/default/workflows"
echo "The worker keeps running; press Ctrl-C to stop it."
wait "$worker" || { echo "worker exited; see $LOG" >&2; exit 1; }
