package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultReloadInterval is how often a Watcher looks at the file.
const DefaultReloadInterval = 5 * time.Second

// WatcherOptions configures a Watcher. Every field is optional.
type WatcherOptions struct {
	// Interval between checks of the file; DefaultReloadInterval if zero.
	Interval time.Duration
	// OnReload is called after a changed file was loaded and put in force.
	OnReload func(p *Policy)
	// OnError is called when the file cannot be read or a changed file is
	// broken; the previous policy stays in force. A broken file is
	// reported once, not at every check.
	OnError func(err error)
}

// Watcher holds the policy in force and reloads it when the file's content
// changes. A broken file never replaces a working policy. It is safe for
// concurrent use: activities call Current while Run polls.
type Watcher struct {
	path string
	opts WatcherOptions
	cur  atomic.Pointer[Policy]

	mu       sync.Mutex
	lastSeen string // hash of the last content read, good or broken
}

// NewWatcher loads the policy at path. It fails when the file cannot be
// loaded: a worker must not start without a policy.
func NewWatcher(path string, opts WatcherOptions) (*Watcher, error) {
	if opts.Interval <= 0 {
		opts.Interval = DefaultReloadInterval
	}
	p, err := Load(path)
	if err != nil {
		return nil, err
	}
	w := &Watcher{path: path, opts: opts, lastSeen: p.Version}
	w.cur.Store(p)
	return w, nil
}

// Current returns the policy in force; never nil.
func (w *Watcher) Current() *Policy { return w.cur.Load() }

// Check reads the file once and puts it in force if its content changed and
// it is valid. It reports whether the policy changed, and the error that
// kept a changed file out.
func (w *Watcher) Check() (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	data, err := readLimited(w.path)
	if err != nil {
		// Not remembered as seen: editors replace files by rename, so the
		// file may be back at the next check.
		err = fmt.Errorf("policy %s: %w; keeping version %s", w.path, err, short(w.Current().Version))
		w.report(err)
		return false, err
	}
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	if h == w.lastSeen {
		return false, nil
	}
	w.lastSeen = h
	if h == w.Current().Version {
		// Back to the content in force after a broken edit.
		return false, nil
	}
	p, err := Parse(w.path, data)
	if err != nil {
		err = fmt.Errorf("policy %s changed but is broken; keeping version %s:\n%w", w.path, short(w.Current().Version), err)
		w.report(err)
		return false, err
	}
	w.cur.Store(p)
	if w.opts.OnReload != nil {
		w.opts.OnReload(p)
	}
	return true, nil
}

// Run checks the file every Interval until ctx is done, then returns nil.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_, _ = w.Check() // errors go to OnError
		}
	}
}

func (w *Watcher) report(err error) {
	if w.opts.OnError != nil {
		w.opts.OnError(err)
	}
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxPolicyBytes+1))
}

func short(version string) string {
	if len(version) > 12 {
		return version[:12]
	}
	return version
}
