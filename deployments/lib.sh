# Shared by the service scripts (sourced, not run): the pid-file bookkeeping
# that lets `stop` touch only what this project started.

# svc_pid PID_FILE MATCH prints the pid in PID_FILE when that process is
# alive and its command line contains MATCH, which guards against a stale
# pid file whose pid now belongs to another program.
svc_pid() {
	local pid_file=$1 match=$2 pid
	[[ -f "$pid_file" ]] || return 1
	pid="$(cat "$pid_file" 2>/dev/null || true)"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$match" || return 1
	echo "$pid"
}

# svc_stop NAME PID_FILE MATCH SECONDS stops our process with SIGTERM,
# escalating to SIGKILL after SECONDS, and removes the pid file.
svc_stop() {
	local name=$1 pid_file=$2 match=$3 timeout=$4 pid
	if ! pid="$(svc_pid "$pid_file" "$match")"; then
		rm -f "$pid_file"
		echo "$name: not started by this project"
		return 0
	fi
	kill -TERM "$pid"
	local deadline=$((SECONDS + timeout))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			echo "$name: pid $pid did not stop within ${timeout}s; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	rm -f "$pid_file"
	echo "$name: stopped"
}

# tcp_answers HOST PORT reports whether something accepts connections there.
tcp_answers() {
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# find_go NAME prints the go command (also found where Debian and the
# official tarball put it when it is not on PATH), or says what to install.
find_go() {
	if command -v go >/dev/null 2>&1; then
		command -v go
	elif [[ -x /usr/local/go/bin/go ]]; then
		echo /usr/local/go/bin/go
	else
		echo "$1: the Go toolchain is not installed: install Go 1.26.8 or newer and put it on PATH" >&2
		return 1
	fi
}
