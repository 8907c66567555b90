package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// launcherBinary is the launcher `make stack` builds.
func launcherBinary(t *testing.T) string {
	t.Helper()
	dataDir := os.Getenv("DATA_DIR")
	if dataDir == "" {
		dataDir = filepath.Join(repoRoot(t), ".data")
	}
	bin := filepath.Join(dataDir, "bin", "temporal-launcher")
	_, err := os.Stat(bin)
	require.NoError(t, err, "the Temporal launcher is not built: run `make stack`")
	return bin
}

// freeBasePort finds a port p such that p..p+3 (frontend, history, matching,
// internal worker) are all free.
func freeBasePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		base := 20000 + rand.IntN(20000)
		ok := true
		for p := base; p <= base+3 && ok; p++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				continue
			}
			_ = l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no four free consecutive ports")
	return 0
}

type launcher struct {
	cmd *exec.Cmd
	// exited is closed once the process is reaped; err is its exit status.
	exited chan struct{}
	err    error
}

func startLauncher(t *testing.T, bin, db string, port, uiPort int) *launcher {
	t.Helper()
	cmd := exec.Command(bin, "--db-file", db, "--port", strconv.Itoa(port), "--ui-port", strconv.Itoa(uiPort), "--log-level", "error")
	// The server logs plenty at shutdown; keep it out of the test output
	// unless the test fails.
	logFile, err := os.CreateTemp(t.TempDir(), "launcher-*.log")
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("launcher log:\n%s", b)
			}
		}
		_ = logFile.Close()
	})
	l := &launcher{cmd: cmd, exited: make(chan struct{})}
	go func() {
		l.err = cmd.Wait()
		close(l.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-l.exited
	})
	return l
}

// dialReady waits until the frontend answers and the namespace exists.
func dialReady(t *testing.T, port int) client.Client {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c, err := client.Dial(client.Options{HostPort: fmt.Sprintf("127.0.0.1:%d", port), Namespace: "default"})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
			cancel()
			if err == nil {
				return c
			}
			c.Close()
		}
		require.True(t, time.Now().Before(deadline), "launcher did not become ready: %v", err)
		time.Sleep(500 * time.Millisecond)
	}
}

func probeWorkflow(_ workflow.Context, s string) (string, error) { return "done: " + s, nil }

// TestLauncherKeepsFinishedWorkflowsAcrossAKill runs a second launcher on
// its own ports and SQLite file, finishes a workflow, kills the launcher
// with SIGKILL, starts it again, and finds the finished run still there.
func TestLauncherKeepsFinishedWorkflowsAcrossAKill(t *testing.T) {
	bin := launcherBinary(t)
	db := filepath.Join(t.TempDir(), "temporal.db")
	port := freeBasePort(t)
	uiPort := freeBasePort(t)

	l := startLauncher(t, bin, db, port, uiPort)
	c := dialReady(t, port)
	w := worker.New(c, "restart-probe", worker.Options{})
	w.RegisterWorkflow(probeWorkflow)
	require.NoError(t, w.Start())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "restart-probe", TaskQueue: "restart-probe"}, probeWorkflow, "x")
	require.NoError(t, err)
	var got string
	require.NoError(t, run.Get(ctx, &got))
	require.Equal(t, "done: x", got)
	w.Stop()
	c.Close()

	require.NoError(t, l.cmd.Process.Signal(syscall.SIGKILL))
	<-l.exited

	l = startLauncher(t, bin, db, port, uiPort)
	c = dialReady(t, port)
	defer c.Close()
	desc, err := c.DescribeWorkflow(ctx, "restart-probe", run.GetRunID())
	require.NoError(t, err, "the finished run survives a kill of the launcher")
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.Status)
	var again string
	require.NoError(t, c.GetWorkflow(ctx, "restart-probe", run.GetRunID()).Get(ctx, &again))
	require.Equal(t, "done: x", again, "its history, result included, is intact")

	// The UI of the restarted launcher answers too. It starts after the
	// frontend, so on a busy machine it may take a moment longer.
	var status int
	require.Eventually(t, func() bool {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", uiPort))
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		status = resp.StatusCode
		return true
	}, 30*time.Second, 100*time.Millisecond, "the restarted launcher's UI never answered")
	require.Equal(t, http.StatusOK, status)

	// SIGTERM shuts it down cleanly.
	require.NoError(t, l.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-l.exited:
		require.NoError(t, l.err, "clean exit on SIGTERM")
	case <-time.After(time.Minute):
		t.Fatal("launcher did not stop on SIGTERM")
	}
}
