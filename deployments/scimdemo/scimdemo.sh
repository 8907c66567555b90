#!/usr/bin/env bash
# Runs the SCIM demo application (a STAND-IN for a SaaS product) for the dev stack.
#
#   scimdemo.sh start    build the binary if stale, start it, wait until it answers HTTP
#   scimdemo.sh stop     stop the instance this project started (per the pid file)
#   scimdemo.sh status   print up/down; exit 0 if up, 3 if down
#
# Environment: DATA_DIR (default <repo>/.data), SCIM_ADDR (127.0.0.1:8280), SCIM_TOKEN
# (dev-scim-token), PG_URL (postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable),
# SCIMDEMO_START_TIMEOUT (seconds, 30). Data lives in PostgreSQL (database scimdemo), so
# PostgreSQL must be up first.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DATA_DIR="${DATA_DIR:-$ROOT/.data}"
BIN="$DATA_DIR/bin/scimdemo"
PID_FILE="$DATA_DIR/run/scimdemo.pid"
LOG="$DATA_DIR/log/scimdemo.log"
ADDR="${SCIM_ADDR:-127.0.0.1:8280}"
START_TIMEOUT="${SCIMDEMO_START_TIMEOUT:-30}"

url() { echo "http://$ADDR/scim/v2"; }

our_pid() { svc_pid "$PID_FILE" "$BIN"; }

# answers is true when the app's / page responds.
answers() {
	curl -fsS -o /dev/null --max-time 2 "http://$ADDR/" 2>/dev/null
}

port_in_use() { tcp_answers "${ADDR%:*}" "${ADDR##*:}"; }


# build compiles the binary when it is missing or older than its sources: the command, the
# app package, the module files (tests and this script excluded).
build() {
	if [[ -x "$BIN" ]] && [[ -z "$(find "$ROOT/deployments/scimdemo" "$ROOT/internal/scimapp" \
		-type f -name '*.go' ! -name '*_test.go' -newer "$BIN" -print -quit 2>/dev/null)" ]] &&
		[[ ! "$ROOT/go.mod" -nt "$BIN" ]] && [[ ! "$ROOT/go.sum" -nt "$BIN" ]]; then
		return 0
	fi
	local go_bin
	go_bin="$(find_go scimdemo)"
	mkdir -p "$(dirname "$BIN")"
	echo "scimdemo: building $BIN..."
	(cd "$ROOT" && "$go_bin" build -o "$BIN.tmp" ./deployments/scimdemo)
	mv "$BIN.tmp" "$BIN"
}

start() {
	local pid
	if pid="$(our_pid)" && answers; then
		echo "scimdemo: already running at $(url)"
		return 0
	fi
	if [[ -z "${pid:-}" ]] && port_in_use; then
		echo "scimdemo: $ADDR is already in use by a process this project did not start" >&2
		return 1
	fi
	if [[ -n "${pid:-}" ]]; then
		echo "scimdemo: previous instance (pid $pid) is not answering; stopping it first"
		stop >/dev/null
	fi

	build
	mkdir -p "$(dirname "$PID_FILE")" "$(dirname "$LOG")" "$DATA_DIR/scimdemo"
	[[ -f "$LOG" ]] && mv -f "$LOG" "$LOG.1"
	# setsid detaches the app from this shell's session so a Ctrl-C in the terminal that ran
	# `make stack` does not take it down; the subshell is not a group leader, so setsid execs
	# in place and $! is the app's pid.
	(cd "$DATA_DIR/scimdemo" && SCIM_ADDR="$ADDR" exec setsid "$BIN" </dev/null >>"$LOG" 2>&1) &
	pid=$!
	echo "$pid" >"$PID_FILE"

	local deadline=$((SECONDS + START_TIMEOUT))
	until answers; do
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$PID_FILE"
			echo "scimdemo: exited during start; last lines of $LOG:" >&2
			tail -n 30 "$LOG" >&2 || true
			return 1
		fi
		if ((SECONDS >= deadline)); then
			echo "scimdemo: not answering after ${START_TIMEOUT}s; last lines of $LOG:" >&2
			tail -n 30 "$LOG" >&2 || true
			stop >/dev/null || true
			return 1
		fi
		sleep 0.2
	done
	echo "scimdemo: started at $(url)"
}

stop() { svc_stop scimdemo "$PID_FILE" "$BIN" 15; }

status() {
	if our_pid >/dev/null && answers; then
		echo "scimdemo: up at $(url)"
		return 0
	fi
	echo "scimdemo: down"
	return 3
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*)
	echo "usage: $0 {start|stop|status}" >&2
	exit 2
	;;
esac
