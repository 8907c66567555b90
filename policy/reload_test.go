package policy

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder collects what a Watcher reports.
type recorder struct {
	mu       sync.Mutex
	reloads  []string
	failures []error
}

func (r *recorder) opts() WatcherOptions {
	return WatcherOptions{
		Interval: 10 * time.Millisecond,
		OnReload: func(p *Policy) { r.mu.Lock(); r.reloads = append(r.reloads, p.Version); r.mu.Unlock() },
		OnError:  func(err error) { r.mu.Lock(); r.failures = append(r.failures, err); r.mu.Unlock() },
	}
}

func (r *recorder) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reloads), len(r.failures)
}

func TestWatcherCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(s string) { require.NoError(t, os.WriteFile(path, []byte(s), 0o600)) }
	write(minimal)

	var rec recorder
	w, err := NewWatcher(path, rec.opts())
	require.NoError(t, err)
	first := w.Current()
	require.NotNil(t, first)

	changed, err := w.Check()
	require.NoError(t, err)
	assert.False(t, changed, "same content: nothing to do")

	second := minimal + "      - {name: h, risk: low}\n"
	write(second)
	changed, err = w.Check()
	require.NoError(t, err)
	assert.True(t, changed)
	assert.NotNil(t, w.Current().Entitlement(Ref{"ldap", "h"}))
	good := w.Current().Version

	write(second + "rules:\n  - {name: r, when: person.departmnet == \"x\", entitlements: [ldap/h]}\n")
	changed, err = w.Check()
	assert.False(t, changed)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "undefined field 'departmnet'")
	assert.Contains(t, err.Error(), "keeping version "+good[:12])
	assert.Equal(t, good, w.Current().Version, "a broken file never replaces a working policy")

	_, err = w.Check()
	assert.NoError(t, err, "the same broken content is reported once")
	reloads, failures := rec.counts()
	assert.Equal(t, 1, reloads)
	assert.Equal(t, 1, failures)

	write(second) // the edit is reverted
	changed, err = w.Check()
	require.NoError(t, err)
	assert.False(t, changed, "back to the policy in force")

	require.NoError(t, os.Remove(path))
	_, err = w.Check()
	assert.Error(t, err, "a missing file is reported")
	assert.Equal(t, good, w.Current().Version)
	write(second)
	changed, err = w.Check()
	require.NoError(t, err)
	assert.False(t, changed)
	assert.NotSame(t, first, w.Current())
}

func TestNewWatcherNeedsAValidPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte("schema: 1\n"), 0o600))
	_, err := NewWatcher(path, WatcherOptions{})
	require.Error(t, err)
	assert.NotEmpty(t, Problems(err))
	_, err = NewWatcher(filepath.Join(t.TempDir(), "missing.yaml"), WatcherOptions{})
	assert.Error(t, err)
}

func TestWatcherRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(minimal), 0o600))
	var rec recorder
	w, err := NewWatcher(path, rec.opts())
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	require.NoError(t, os.WriteFile(path, []byte(minimal+"      - {name: h, risk: low}\n"), 0o600))
	require.Eventually(t, func() bool { return w.Current().Entitlement(Ref{"ldap", "h"}) != nil }, 5*time.Second, 5*time.Millisecond)

	require.NoError(t, os.WriteFile(path, []byte("schema: [\n"), 0o600))
	require.Eventually(t, func() bool { _, f := rec.counts(); return f == 1 }, 5*time.Second, 5*time.Millisecond)
	assert.NotNil(t, w.Current().Entitlement(Ref{"ldap", "h"}))

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop when its context was cancelled")
	}
}
