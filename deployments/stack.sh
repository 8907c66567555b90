#!/usr/bin/env bash
# The local stack in one place: PostgreSQL, OpenLDAP, the demo SCIM app and
# Temporal with its UI. `up` starts what is not running (idempotent) and
# writes $DATA_DIR/stack.env with every address; `down` stops only what this
# project started; `status` reports each service.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export DATA_DIR="${DATA_DIR:-$ROOT/.data}"
D="$ROOT/deployments"
mkdir -p "$DATA_DIR"

env_file() {
  # PG_URL comes from the postgres step; the rest are the stack's fixed addresses.
  {
    cat "$DATA_DIR/postgres.env"
    echo "LDAP_URL=${LDAP_URL:-ldap://127.0.0.1:${LDAP_PORT:-3389}}"
    echo "SCIM_URL=${SCIM_URL:-http://127.0.0.1:8280/scim/v2}"
    echo "TEMPORAL_ADDRESS=${TEMPORAL_ADDRESS:-127.0.0.1:7233}"
    echo "TEMPORAL_UI_URL=${TEMPORAL_UI_URL:-http://127.0.0.1:8233}"
  } > "$DATA_DIR/stack.env"
}

case "${1:-}" in
up)
  "$D/postgres/postgres.sh" start
  # The SCIM demo keeps its users in PostgreSQL: it needs PG_URL.
  set -a; . "$DATA_DIR/postgres.env"; set +a
  "$D/slapd/slapd.sh" start
  "$D/scimdemo/scimdemo.sh" start
  "$D/temporal/temporal.sh" start
  env_file
  # Demo applications start empty: create the groups and roles the demo
  # policy grants (idempotent; real applications already have theirs).
  set -a; . "$DATA_DIR/stack.env"; set +a
  (cd "$ROOT" && go build -o "$DATA_DIR/bin/seed" ./deployments/demo/seed)
  "$DATA_DIR/bin/seed" --policy "$ROOT/deployments/demo/policy.yaml" | tail -1 | sed 's/^/seed: /'
  echo
  echo "Stack is up:"
  sed 's/^/  /' "$DATA_DIR/stack.env"
  echo "  Temporal UI: ${TEMPORAL_UI_URL:-http://127.0.0.1:8233}"
  ;;
down)
  "$D/temporal/temporal.sh" stop || true
  "$D/scimdemo/scimdemo.sh" stop || true
  "$D/slapd/slapd.sh" stop || true
  "$D/postgres/postgres.sh" stop || true
  ;;
status)
  rc=0
  for s in postgres/postgres slapd/slapd scimdemo/scimdemo temporal/temporal; do
    "$D/$s.sh" status || rc=1
  done
  exit $rc
  ;;
*) echo "usage: $0 {up|down|status}" >&2; exit 2 ;;
esac
