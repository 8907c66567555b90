package e2e

import (
	"bufio"
	"bytes"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startListener starts cmd, a starter command that serves HTTP
// (`serve`, `codec-server`), waits until its log says msg with the address
// it listens on (at most startWait), and returns "http://" and that
// address. When the test ends it sends SIGTERM and checks that the command
// stops cleanly within stopWait and never logged any of secrets.
func startListener(t *testing.T, cmd *exec.Cmd, msg string, startWait, stopWait time.Duration, secrets ...string) string {
	t.Helper()
	name := cmd.Args[1]
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var mu sync.Mutex
	var logs bytes.Buffer
	addrc := make(chan string, 1)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		listening := regexp.MustCompile(`msg="` + regexp.QuoteMeta(msg) + `" addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			<-copied
			assert.NoError(t, err, "%s stops cleanly on SIGTERM", name)
		case <-time.After(stopWait):
			_ = cmd.Process.Kill()
			t.Errorf("%s did not stop within %s of SIGTERM", name, stopWait)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, s := range secrets {
			assert.NotContains(t, logs.String(), s, "%s never logs a secret", name)
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", name, logs.String())
		}
	})
	select {
	case addr := <-addrc:
		return "http://" + addr
	case <-time.After(startWait):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%s did not start listening:\n%s", name, logs.String())
	}
	return ""
}
