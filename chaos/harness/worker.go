package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/provisio-dev/provisio/internal/config"
)

// buildWorker compiles the production worker, so the process the faults
// kill is the one operators run.
func buildWorker(ctx context.Context, repoRoot, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./worker")
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./worker: %w: %s", err, b)
	}
	return nil
}

// workerEnv is the environment of the worker process: the caller's, with
// every setting the worker reads replaced by cfg's (see the README's
// table), so nothing of the shared stack leaks in. The payload codec's
// settings are the caller's, which cfg.Codec was read from.
func workerEnv(cfg config.Config) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PROVISIO_CODEC_") {
			env = append(env, kv)
			continue
		}
		if strings.HasPrefix(k, "TEMPORAL_") || strings.HasPrefix(k, "PROVISIO_") || strings.HasPrefix(k, "LDAP_") ||
			strings.HasPrefix(k, "SCIM_") || k == "PG_URL" {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"TEMPORAL_ADDRESS="+cfg.TemporalAddress,
		"TEMPORAL_NAMESPACE="+cfg.TemporalNamespace,
		"TEMPORAL_UI_URL="+cfg.UIURL,
		"PROVISIO_TASK_QUEUE="+cfg.TaskQueue,
		"PROVISIO_DB_URL="+cfg.StoreURL,
		"PROVISIO_POLICY="+cfg.PolicyFile,
		"PROVISIO_ROSTER="+cfg.RosterFile,
		"PROVISIO_SHUTDOWN_TIMEOUT="+cfg.ShutdownTimeout.String(),
		"PG_URL="+cfg.Postgres.URL,
		"LDAP_URL="+cfg.LDAP.URL,
		"LDAP_BIND_DN="+cfg.LDAP.BindDN,
		"LDAP_BIND_PASSWORD="+cfg.LDAP.Password,
		"LDAP_BASE_DN="+cfg.LDAP.BaseDN,
		"LDAP_PEOPLE_DN="+cfg.LDAP.PeopleDN,
		"LDAP_GROUPS_DN="+cfg.LDAP.GroupsDN,
		"LDAP_STARTTLS="+strconv.FormatBool(cfg.LDAP.StartTLS),
		"SCIM_URL="+cfg.SCIM.URL,
		"SCIM_TOKEN="+cfg.SCIM.Token,
	)
}

// supervisor keeps one worker process running: whenever it exits (killed
// by a fault, or unable to start while an application is down) it is
// started again a second later, as systemd or Kubernetes would.
type supervisor struct {
	bin, logFile string
	env          []string
	// note reports what happened to the worker, for the run's log.
	note func(format string, args ...any)

	mu       sync.Mutex
	cur      *exec.Cmd
	since    time.Time
	starts   int
	exits    int
	stopping bool
	done     chan struct{}
}

func startSupervisor(bin, logFile string, env []string, note func(string, ...any)) *supervisor {
	s := &supervisor{bin: bin, logFile: logFile, env: env, note: note, done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *supervisor) loop() {
	defer close(s.done)
	for {
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			return
		}
		cmd, err := s.spawn()
		if err == nil {
			s.cur, s.since = cmd, time.Now()
			s.starts++
		}
		s.mu.Unlock()
		if err != nil {
			s.note("worker: cannot start: %v", err)
			time.Sleep(time.Second)
			continue
		}
		waitErr := cmd.Wait()
		s.mu.Lock()
		s.cur = nil
		s.exits++
		stopping := s.stopping
		s.mu.Unlock()
		if stopping {
			return
		}
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			// A kill is reported by whoever killed it; anything else is
			// worth a line (e.g. no connection at start-up during an outage).
			s.note("worker pid %d exited by itself (%v) after %s; restarting", cmd.Process.Pid, waitErr, time.Since(s.since).Round(100*time.Millisecond))
		}
		time.Sleep(time.Second)
	}
}

func (s *supervisor) spawn() (*exec.Cmd, error) {
	logFile, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logFile, "--- %s worker start #%d\n", time.Now().UTC().Format(time.RFC3339Nano), s.starts+1)
	cmd := exec.Command(s.bin)
	cmd.Env = s.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	// The child has its own descriptor now.
	_ = logFile.Close()
	return cmd, err
}

// kill sends SIGKILL to the running worker and returns its pid; false
// when none runs at this moment.
func (s *supervisor) kill() (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return 0, false
	}
	pid := s.cur.Process.Pid
	_ = s.cur.Process.Signal(syscall.SIGKILL)
	// Gone from now on, even before the loop reaps it: waitUp must not
	// take the dead process for a running one.
	s.cur = nil
	return pid, true
}

// pid returns the running worker's pid and how long it has run.
func (s *supervisor) pid() (int, time.Duration, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return 0, 0, false
	}
	return s.cur.Process.Pid, time.Since(s.since), true
}

// waitUp waits until a worker has been running for at least d, so a fault
// that needs the worker (an outage it must notice) finds one.
func (s *supervisor) waitUp(ctx context.Context, d time.Duration) error {
	return waitFor(ctx, 2*time.Minute, 200*time.Millisecond, func(context.Context) error {
		if _, up, ok := s.pid(); ok && up >= d {
			return nil
		}
		return fmt.Errorf("no worker has run for %s", d)
	})
}

// counts returns how many times a worker was started and has exited.
func (s *supervisor) counts() (starts, exits int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts, s.exits
}

// stop ends the worker with SIGTERM (a graceful shutdown) and stops
// restarting it.
func (s *supervisor) stop() {
	s.mu.Lock()
	s.stopping = true
	if s.cur != nil {
		_ = s.cur.Process.Signal(syscall.SIGTERM)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.kill()
		<-s.done
	}
}
