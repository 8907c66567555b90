#!/usr/bin/env bash
# PostgreSQL for the local stack: PG_URL if set, else the server at
# 127.0.0.1:5432 if it answers, else a private cluster under .data/postgres
# started with the machine's initdb/pg_ctl. Writes the chosen URL to
# $DATA_DIR/postgres.env so the other programs use the same server.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DATA_DIR="${DATA_DIR:-$ROOT/.data}"
PGDATA_DIR="$DATA_DIR/postgres"
PRIVATE_PORT="${PG_PRIVATE_PORT:-55432}"
ENV_FILE="$DATA_DIR/postgres.env"
MARK="$DATA_DIR/run/postgres.started"
mkdir -p "$DATA_DIR/run" "$DATA_DIR/log"

answers() { # host port
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h "$1" -p "$2" -t 2
  else
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
  fi
}

find_bin() { # name: the newest installed server binary of that name
  if command -v "$1" >/dev/null 2>&1; then command -v "$1"; return; fi
  ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -1
}

as_owner() { # run as the cluster owner: initdb and postgres refuse root
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || { echo "postgres: running as root needs a 'postgres' system user for a private cluster" >&2; exit 1; }
    chown -R postgres "$PGDATA_DIR" "$DATA_DIR/log"
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

write_env() { printf 'PG_URL=%s\n' "$1" > "$ENV_FILE"; }

start_private() {
  local initdb pgctl
  initdb=$(find_bin initdb); pgctl=$(find_bin pg_ctl)
  if [ -z "$initdb" ] || [ -z "$pgctl" ]; then
    echo "postgres: nothing answers at 127.0.0.1:5432 and initdb/pg_ctl are not installed." >&2
    echo "          Install PostgreSQL (Debian: apt-get install postgresql) or set PG_URL." >&2
    exit 1
  fi
  mkdir -p "$PGDATA_DIR/sock"
  if [ ! -f "$PGDATA_DIR/db/PG_VERSION" ]; then
    mkdir -p "$PGDATA_DIR/db"
    as_owner "$initdb" -D "$PGDATA_DIR/db" -U postgres --auth=trust -E UTF8 >"$DATA_DIR/log/postgres-initdb.log" 2>&1 \
      || { tail -20 "$DATA_DIR/log/postgres-initdb.log" >&2; exit 1; }
  fi
  as_owner "$pgctl" -D "$PGDATA_DIR/db" -l "$DATA_DIR/log/postgres.log" -w -t 60 \
    -o "-p $PRIVATE_PORT -k $PGDATA_DIR/sock -c listen_addresses=127.0.0.1" start >/dev/null \
    || { tail -20 "$DATA_DIR/log/postgres.log" >&2; exit 1; }
  touch "$MARK"
}

case "${1:-}" in
start)
  if [ -n "${PG_URL:-}" ]; then
    write_env "$PG_URL"
    echo "postgres: using PG_URL (not started by this project)"
    exit 0
  fi
  if [ -f "$MARK" ] && answers 127.0.0.1 "$PRIVATE_PORT"; then
    echo "postgres: already running at 127.0.0.1:$PRIVATE_PORT (private cluster)"
    write_env "postgres://postgres@127.0.0.1:$PRIVATE_PORT/postgres?sslmode=disable"
    exit 0
  fi
  if answers 127.0.0.1 5432; then
    write_env "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
    echo "postgres: already running at 127.0.0.1:5432 (the machine's server)"
    exit 0
  fi
  start_private
  write_env "postgres://postgres@127.0.0.1:$PRIVATE_PORT/postgres?sslmode=disable"
  echo "postgres: started at 127.0.0.1:$PRIVATE_PORT (private cluster in $PGDATA_DIR)"
  ;;
stop)
  if [ -f "$MARK" ]; then
    as_owner "$(find_bin pg_ctl)" -D "$PGDATA_DIR/db" -m fast -w stop >/dev/null 2>&1 || true
    rm -f "$MARK"
    echo "postgres: stopped"
  else
    echo "postgres: not started by this project"
  fi
  ;;
status)
  url=$(sed -n 's/^PG_URL=//p' "$ENV_FILE" 2>/dev/null || true)
  hostport=$(printf '%s' "${url:-postgres://x@127.0.0.1:5432/}" | sed -E 's#^[a-z]+://([^@/]*@)?([^/?]+).*#\2#')
  host=${hostport%:*}; port=${hostport##*:}
  if answers "$host" "$port"; then echo "postgres: up at $host:$port"; exit 0; fi
  echo "postgres: down"; exit 3
  ;;
*) echo "usage: $0 {start|stop|status}" >&2; exit 2 ;;
esac
