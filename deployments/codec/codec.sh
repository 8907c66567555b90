#!/usr/bin/env bash
# Runs the payload codec server (`starter codec-server`) for the dev stack, so the Temporal UI
# shows decrypted payloads of runs the worker encrypted.
#
#   codec.sh start    build the starter CLI, start the server, wait until /health answers
#   codec.sh stop     stop the instance this project started (per the pid file)
#   codec.sh status   print up/down; exit 0 if up, 3 if down
#
# Environment: DATA_DIR (default <repo>/.data), PROVISIO_CODEC_KEYS or PROVISIO_CODEC_KEYS_FILE
# (required by start), PROVISIO_CODEC_KEY_ID, PROVISIO_CODEC_ADDR (127.0.0.1:8234),
# TEMPORAL_UI_URL (the browser origin allowed to call it), CODEC_START_TIMEOUT (seconds, 60).
set -euo pipefail
. "$(dirname "$0")/../lib.sh"

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
DATA_DIR="${DATA_DIR:-$ROOT/.data}"
BIN="$DATA_DIR/bin/starter"
PID_FILE="$DATA_DIR/run/codec.pid"
LOG="$DATA_DIR/log/codec.log"
ADDR="${PROVISIO_CODEC_ADDR:-127.0.0.1:8234}"
START_TIMEOUT="${CODEC_START_TIMEOUT:-60}"

url() { echo "http://$ADDR"; }

our_pid() { svc_pid "$PID_FILE" codec-server; }

answers() { curl -fsS -o /dev/null --max-time 2 "$(url)/health" 2>/dev/null; }

port_in_use() { tcp_answers "${ADDR%:*}" "${ADDR##*:}"; }

# build compiles the starter CLI; the Go build cache makes this quick when nothing changed.
build() {
	local go_bin
	go_bin="$(find_go codec)"
	mkdir -p "$(dirname "$BIN")"
	(cd "$ROOT" && "$go_bin" build -o "$BIN.tmp" ./starter)
	mv "$BIN.tmp" "$BIN"
}

start() {
	if [[ -z "${PROVISIO_CODEC_KEYS:-}${PROVISIO_CODEC_KEYS_FILE:-}" ]]; then
		echo "codec: no PROVISIO_CODEC_KEYS or PROVISIO_CODEC_KEYS_FILE: nothing to serve" >&2
		return 1
	fi
	local pid
	if pid="$(our_pid)" && answers; then
		echo "codec: already running at $(url)"
		return 0
	fi
	if [[ -z "${pid:-}" ]] && port_in_use; then
		echo "codec: $ADDR is already in use by a process this project did not start" >&2
		return 1
	fi
	if [[ -n "${pid:-}" ]]; then
		echo "codec: previous instance (pid $pid) is not answering; stopping it first"
		stop >/dev/null
	fi

	build
	mkdir -p "$(dirname "$PID_FILE")" "$(dirname "$LOG")"
	[[ -f "$LOG" ]] && mv -f "$LOG" "$LOG.1"
	# setsid detaches the server from this shell's session so a Ctrl-C in the terminal that ran
	# `make stack` does not take it down; the subshell is not a group leader, so setsid execs
	# in place and $! is the server's pid.
	(cd "$ROOT" && PROVISIO_CODEC_ADDR="$ADDR" exec setsid "$BIN" codec-server </dev/null >>"$LOG" 2>&1) &
	pid=$!
	echo "$pid" >"$PID_FILE"

	local deadline=$((SECONDS + START_TIMEOUT))
	until answers; do
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$PID_FILE"
			echo "codec: exited during start; last lines of $LOG:" >&2
			tail -n 30 "$LOG" >&2 || true
			return 1
		fi
		if ((SECONDS >= deadline)); then
			echo "codec: not answering after ${START_TIMEOUT}s; last lines of $LOG:" >&2
			tail -n 30 "$LOG" >&2 || true
			stop >/dev/null || true
			return 1
		fi
		sleep 0.2
	done
	echo "codec: started at $(url)"
}

stop() { svc_stop codec "$PID_FILE" codec-server 15; }

status() {
	if our_pid >/dev/null && answers; then
		echo "codec: up at $(url)"
		return 0
	fi
	echo "codec: down"
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
