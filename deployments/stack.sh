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
    codec_env
  } > "$DATA_DIR/stack.env"
}

# codec_keys gives payload encryption a key: the operator's (PROVISIO_CODEC_KEYS or
# PROVISIO_CODEC_KEYS_FILE, left where they are), or a dev key generated once into
# $DATA_DIR/codec.keys and kept, since runs encrypted with it are unreadable without it.
# PROVISIO_CODEC=off leaves payloads in the clear. With encryption on, the UI is pointed at
# the codec server (TEMPORAL_UI_CODEC_ENDPOINT, read when the launcher starts).
codec_keys() {
  CODEC_ON=0
  [[ "${PROVISIO_CODEC:-on}" == off ]] && return 0
  CODEC_ON=1
  if [[ -z "${PROVISIO_CODEC_KEYS:-}${PROVISIO_CODEC_KEYS_FILE:-}" ]]; then
    local f="$DATA_DIR/codec.keys"
    if [[ ! -s "$f" ]]; then
      (umask 077 && {
        echo "# Payload key of the dev stack, written by deployments/stack.sh. Keep it: runs"
        echo "# encrypted with it cannot be read without it. Format: ID:BASE64KEY, one a line."
        echo "dev-$(date -u +%Y%m%d%H%M%S):$(head -c 32 /dev/urandom | base64 -w0)"
      } >"$f.tmp" && mv "$f.tmp" "$f")
      echo "codec: generated a payload key in $f"
    fi
    export PROVISIO_CODEC_KEYS_FILE="$f"
  fi
  export TEMPORAL_UI_CODEC_ENDPOINT="${TEMPORAL_UI_CODEC_ENDPOINT:-http://${PROVISIO_CODEC_ADDR:-127.0.0.1:8234}}"
}

# codec_env prints the codec lines of stack.env: where the key file is, never a key (keys
# given inline in PROVISIO_CODEC_KEYS stay in the operator's environment).
codec_env() {
  [[ "${CODEC_ON:-0}" == 1 ]] || return 0
  [[ -n "${PROVISIO_CODEC_KEYS_FILE:-}" ]] && echo "PROVISIO_CODEC_KEYS_FILE=$PROVISIO_CODEC_KEYS_FILE"
  [[ -n "${PROVISIO_CODEC_KEY_ID:-}" ]] && echo "PROVISIO_CODEC_KEY_ID=$PROVISIO_CODEC_KEY_ID"
  echo "PROVISIO_CODEC_ADDR=${PROVISIO_CODEC_ADDR:-127.0.0.1:8234}"
}

case "${1:-}" in
up)
  "$D/postgres/postgres.sh" start
  # The SCIM demo keeps its users in PostgreSQL: it needs PG_URL.
  set -a; . "$DATA_DIR/postgres.env"; set +a
  "$D/slapd/slapd.sh" start
  "$D/scimdemo/scimdemo.sh" start
  codec_keys
  "$D/temporal/temporal.sh" start
  env_file
  # Demo applications start empty: create the groups and roles the demo
  # policy grants (idempotent; real applications already have theirs).
  set -a; . "$DATA_DIR/stack.env"; set +a
  (cd "$ROOT" && go build -o "$DATA_DIR/bin/seed" ./deployments/demo/seed)
  "$DATA_DIR/bin/seed" --policy "$ROOT/deployments/demo/policy.yaml" | tail -1 | sed 's/^/seed: /'
  # The codec server lets the UI show the payloads the worker encrypts.
  if [[ "${CODEC_ON:-0}" == 1 ]]; then "$D/codec/codec.sh" start; fi
  echo
  echo "Stack is up:"
  sed 's/^/  /' "$DATA_DIR/stack.env"
  echo "  Temporal UI: ${TEMPORAL_UI_URL:-http://127.0.0.1:8233}"
  ;;
down)
  "$D/codec/codec.sh" stop || true
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
  # The codec server runs only with payload encryption on (stack.env names a key file).
  if grep -qs '^PROVISIO_CODEC_' "$DATA_DIR/stack.env"; then "$D/codec/codec.sh" status || rc=1; fi
  exit $rc
  ;;
*) echo "usage: $0 {up|down|status}" >&2; exit 2 ;;
esac
