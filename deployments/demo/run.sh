#!/usr/bin/env bash
# The `make run` demo: start the worker, hire one person from the sample
# roster, print where to watch it, and keep the worker running until Ctrl-C.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
DATA_DIR="${DATA_DIR:-$ROOT/.data}"
EMPLOYEE="${DEMO_EMPLOYEE:-E100001}"
mkdir -p "$DATA_DIR/log"

bin/worker > >(tee "$DATA_DIR/log/worker.log") 2>&1 &
worker=$!
trap 'kill -TERM $worker 2>/dev/null; wait $worker 2>/dev/null; echo; echo "worker stopped (the stack keeps running: make stack-down stops it)"' EXIT
trap 'exit 130' INT TERM

echo "Hiring $EMPLOYEE from deployments/demo/roster.csv ..."
bin/starter hire --roster deployments/demo/roster.csv --employee-id "$EMPLOYEE" --wait
echo
bin/starter status "$EMPLOYEE"
echo
echo "Watch it in the Temporal UI: ${TEMPORAL_UI_URL:-http://127.0.0.1:8233}/namespaces/default/workflows"
echo "The worker keeps running; press Ctrl-C to stop it."
wait $worker
