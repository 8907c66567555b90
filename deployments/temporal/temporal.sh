#!/usr/bin/env bash
# Runs the local Temporal server + Web UI (the launcher in this directory) for the dev stack.
#
#   temporal.sh start    build the launcher if needed, start it, wait until it answers
#   temporal.sh stop     stop the instance this project started (per the pid file)
#   temporal.sh status   print up/down; exit 0 if up, 3 if down
#
# Environment (start/status): DATA_DIR (default <repo>/.data), TEMPORAL_PORT (7233),
# TEMPORAL_UI_PORT (8233, 0 disables the UI), TEMPORAL_DB_FILE (<DATA_DIR>/temporal/temporal.db),
# TEMPORAL_START_TIMEOUT (seconds, 120), TEMPORAL_LOG_LEVEL (info), TEMPORAL_UI_CODEC_ENDPOINT
# (empty: the UI shows payloads as stored).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SRC="$ROOT/deployments/temporal"
DATA_DIR="${DATA_DIR:-$ROOT/.data}"
BIN="$DATA_DIR/bin/temporal-launcher"
PID_FILE="$DATA_DIR/run/temporal.pid"
LOG="$DATA_DIR/log/temporal.log"
IP=127.0.0.1
PORT="${TEMPORAL_PORT:-7233}"
UI_PORT="${TEMPORAL_UI_PORT:-8233}"
DB_FILE="${TEMPORAL_DB_FILE:-$DATA_DIR/temporal/temporal.db}"
START_TIMEOUT="${TEMPORAL_START_TIMEOUT:-120}"

addresses() {
	if [[ "$UI_PORT" != 0 ]]; then
		echo "$IP:$PORT, UI at http://$IP:$UI_PORT"
	else
		echo "$IP:$PORT"
	fi
}

our_pid() { svc_pid "$PID_FILE" temporal-launcher; }

# cmdline_of prints a process's arguments separated (and ended) by spaces.
cmdline_of() {
	tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null || true
}

port_answers() { tcp_answers "$IP" "$1"; }

ui_answers() {
	[[ "$UI_PORT" == 0 ]] && return 0
	curl -fsS -o /dev/null --max-time 2 "http://$IP:$UI_PORT/" 2>/dev/null
}


# build compiles the launcher when the binary is missing or older than a source file of this
# module (this script and tests excluded: they do not change the binary).
build() {
	if [[ -x "$BIN" ]] && [[ -z "$(find "$SRC" -type f ! -name '*.sh' ! -name '*_test.go' -newer "$BIN" -print -quit)" ]]; then
		return 0
	fi
	local go_bin
	go_bin="$(find_go temporal)"
	mkdir -p "$(dirname "$BIN")"
	echo "temporal: building launcher into $BIN (the first build takes several minutes)..."
	(cd "$SRC" && "$go_bin" build -trimpath -buildvcs=false -o "$BIN.tmp" .)
	mv "$BIN.tmp" "$BIN"
}

# wait_ready waits until the launcher with the given pid answers on gRPC and (if enabled) HTTP.
wait_ready() {
	local pid=$1 deadline=$((SECONDS + START_TIMEOUT))
	until port_answers "$PORT" && ui_answers; do
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$PID_FILE"
			echo "temporal: launcher exited during start; last lines of $LOG:" >&2
			tail -n 30 "$LOG" >&2 || true
			return 1
		fi
		if ((SECONDS >= deadline)); then
			echo "temporal: not answering after ${START_TIMEOUT}s; last lines of $LOG:" >&2
			tail -n 30 "$LOG" >&2 || true
			return 1
		fi
		sleep 0.5
	done
}

start() {
	local pid
	if pid="$(our_pid)"; then
		if [[ "$(cmdline_of "$pid")" != *" --port $PORT "* ]]; then
			echo "temporal: the instance this project started (pid $pid) uses another port; run '$0 stop' first" >&2
			return 1
		fi
		# Ours: either serving already, or a concurrent start still warming up.
		wait_ready "$pid" || return 1
		echo "temporal: already running at $(addresses)"
		return 0
	fi
	if port_answers "$PORT"; then
		echo "temporal: port $PORT is already in use by a process this project did not start" >&2
		return 1
	fi

	build
	mkdir -p "$(dirname "$PID_FILE")" "$(dirname "$LOG")" "$(dirname "$DB_FILE")"
	if [[ -f "$LOG" ]]; then
		mv -f "$LOG" "$LOG.1" # keep the previous run's log for post-mortems
	fi
	# setsid detaches the launcher from this shell's session, so a Ctrl-C in the terminal that
	# ran `make stack` later does not take it down. The script is not a process group leader,
	# so setsid execs in place and $! is the launcher's pid.
	(cd "$ROOT" && exec setsid "$BIN" \
		--db-file "$DB_FILE" --ip "$IP" --port "$PORT" --ui-port "$UI_PORT" \
		--log-level "${TEMPORAL_LOG_LEVEL:-info}" ${TEMPORAL_UI_CODEC_ENDPOINT:+--ui-codec-endpoint "$TEMPORAL_UI_CODEC_ENDPOINT"} \
		</dev/null >>"$LOG" 2>&1) &
	pid=$!
	echo "$pid" >"$PID_FILE"
	if ! wait_ready "$pid"; then
		stop >/dev/null || true
		return 1
	fi
	echo "temporal: started at $(addresses)"
}

stop() { svc_stop temporal "$PID_FILE" temporal-launcher 30; }

status() {
	if our_pid >/dev/null && port_answers "$PORT"; then
		echo "temporal: up at $(addresses)"
		return 0
	fi
	if port_answers "$PORT"; then
		echo "temporal: up at $IP:$PORT (not started by this project)"
		return 0
	fi
	echo "temporal: down"
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
