package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/provisio-dev/provisio/workflows"
)

type faultKind int

const (
	faultKill faultKind = iota
	faultLauncher
	faultLDAP
	faultPostgres
)

// fault is one step of the schedule, at a moment after the load began.
type fault struct {
	at   time.Duration
	kind faultKind
	dur  time.Duration
}

// schedule places the faults over the load: the LDAP outage a quarter of
// the way, the launcher restarts around the middle, the PostgreSQL outage
// at two thirds, and the worker kills at random moments. The steps run
// one after another, so a kill never falls inside an outage (a worker
// cannot start while slapd or PostgreSQL is down, and the outage must be
// seen by a running worker).
func (h *harness) schedule() []fault {
	span := h.sc.Spread + 30*time.Second
	frac := func(f float64) time.Duration { return time.Duration(f * float64(span)) }
	var fs []fault
	if h.sc.LDAPOutage > 0 {
		fs = append(fs, fault{at: frac(0.25), kind: faultLDAP, dur: h.sc.LDAPOutage})
	}
	if h.sc.PostgresOutage > 0 {
		fs = append(fs, fault{at: frac(0.7), kind: faultPostgres, dur: h.sc.PostgresOutage})
	}
	for k := range h.sc.LauncherRestarts {
		fs = append(fs, fault{at: frac(0.45 + 0.4*float64(k)/float64(h.sc.LauncherRestarts)), kind: faultLauncher})
	}
	for range h.sc.WorkerKills {
		fs = append(fs, fault{at: frac(0.05 + 0.95*h.rng.Float64()), kind: faultKill})
	}
	slices.SortStableFunc(fs, func(a, b fault) int { return int(a.at - b.at) })
	return fs
}

// faults runs the schedule. Leavers are terminated along the way, a batch
// just before each kill and restart and a bigger one as each outage
// begins, so offboardings are in flight when each fault strikes.
func (h *harness) faults(ctx context.Context, start time.Time, leavers *leaverPool) error {
	plan := h.schedule()
	outages, others := 0, 0
	for _, f := range plan {
		if f.kind == faultLDAP || f.kind == faultPostgres {
			outages++
		} else {
			others++
		}
	}
	perOutage, perOther := max(1, h.sc.Leavers/max(1, 2*outages)), max(1, h.sc.Leavers/max(1, 2*others))
	for _, f := range plan {
		if !sleepUntil(ctx, start.Add(f.at)) {
			return ctx.Err()
		}
		var err error
		switch f.kind {
		case faultKill:
			err = h.killWorker(ctx, leavers, perOther)
		case faultLauncher:
			err = h.restartLauncher(ctx, leavers, perOther)
		case faultLDAP:
			err = h.outage(ctx, leavers, perOutage, "slapd", f.dur,
				func(ctx context.Context) error { return h.slapd.run(ctx, "stop") },
				func(ctx context.Context) error { return h.slapd.run(ctx, "start") })
		case faultPostgres:
			err = h.outage(ctx, leavers, perOutage, "PostgreSQL (target application and provisio store)", f.dur,
				h.pg.stop, h.pg.start)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// killWorker sends SIGKILL to a worker that has run a few seconds (a
// kill of one still starting tests little), at a random moment of those.
func (h *harness) killWorker(ctx context.Context, leavers *leaverPool, n int) error {
	if err := h.worker.waitUp(ctx, 3*time.Second); err != nil {
		return fmt.Errorf("worker kill: %w", err)
	}
	released := leavers.release(ctx, n)
	sleepUntil(ctx, time.Now().Add(time.Duration(h.rng.Int64N(int64(2*time.Second)))))
	pid, up, ok := h.worker.pid()
	if !ok {
		return nil
	}
	h.worker.kill()
	h.inject("SIGKILL worker pid %d after %s up (%d leavers terminated just before); it restarts in a second",
		pid, up.Round(100*time.Millisecond), len(released))
	return nil
}

// restartLauncher stops the Temporal server (SIGTERM) and starts it
// again on the same ports and SQLite file.
func (h *harness) restartLauncher(ctx context.Context, leavers *leaverPool, n int) error {
	released := leavers.release(ctx, n)
	h.inject("Temporal launcher stopped (SIGTERM) with its SQLite file kept (%d leavers terminated just before)", len(released))
	down := time.Now()
	h.launcher.stop()
	if err := h.launcher.start(ctx); err != nil {
		return fmt.Errorf("restart the launcher: %w", err)
	}
	h.inject("Temporal launcher back after %s", time.Since(down).Round(100*time.Millisecond))
	return nil
}

// maxOutageExtension bounds how much longer than planned an outage lasts
// while waiting for an offboarding in flight to be flagged.
const maxOutageExtension = 2 * time.Minute

// Outage is what an application outage showed: the leavers terminated
// while it lasted and which of their offboardings raised NeedsAttention
// before it ended.
type Outage struct {
	Service    string        `json:"service"`
	Down       time.Duration `json:"down"`
	Terminated []string      `json:"terminated"`
	Flagged    []string      `json:"flagged"`
}

// outage stops a service for d, terminating leavers as it goes down, and
// watches (through visibility, as an operator would) for their
// offboardings to be flagged NeedsAttention while it is down.
func (h *harness) outage(ctx context.Context, leavers *leaverPool, n int, service string, d time.Duration, stop, start func(context.Context) error) error {
	if !leavers.awaitEligible(ctx, 3*time.Minute) {
		h.problem("%s outage: no leaver was onboarded in time to be in flight during it", service)
	}
	if err := h.worker.waitUp(ctx, 3*time.Second); err != nil {
		return fmt.Errorf("%s outage: %w", service, err)
	}
	if err := stop(ctx); err != nil {
		return fmt.Errorf("%s outage: %w", service, err)
	}
	down := time.Now()
	h.inject("%s stopped for %s", service, d)
	released := leavers.release(ctx, n)
	h.logf("%s down: terminated %d leavers: %s", service, len(released), strings.Join(released, " "))

	var mu sync.Mutex
	flagged := map[string]bool{}
	wctx, stopWatch := context.WithCancel(ctx)
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		q := fmt.Sprintf("%s = '%s' AND %s = true", workflows.AttrLifecycleEvent.GetName(), workflows.EventLeaver, workflows.AttrNeedsAttention.GetName())
		for {
			if ids, err := h.list(wctx, q); err == nil {
				mu.Lock()
				for _, id := range ids {
					flagged[strings.TrimPrefix(id, "offboarding-")] = true
				}
				mu.Unlock()
			}
			if !sleepUntil(wctx, time.Now().Add(2*time.Second)) {
				return
			}
		}
	}()
	sleepUntil(ctx, down.Add(d))
	// A step that fails only raises NeedsAttention once its activity's
	// own quick retries are spent (about 15 s, much longer on a loaded
	// machine). If none of the offboardings got there yet, the outage
	// lasts until one does, so the flag is seen while the application is
	// down; the report gives the real duration.
	anyFlagged := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.ContainsFunc(released, func(id string) bool { return flagged[id] })
	}
	if len(released) > 0 && !anyFlagged() {
		h.logf("%s: no offboarding flagged yet; keeping it down until one is (at most %s more)", service, maxOutageExtension)
		_ = waitFor(ctx, maxOutageExtension, time.Second, func(context.Context) error {
			if anyFlagged() {
				return nil
			}
			return errors.New("not flagged yet")
		})
	}
	stopWatch()
	watch.Wait()
	if err := start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("%s outage: start it again: %w", service, err)
	}
	o := Outage{Service: service, Down: time.Since(down).Round(100 * time.Millisecond), Terminated: sortedIDs(released)}
	for _, id := range released {
		if flagged[id] {
			o.Flagged = append(o.Flagged, id)
		}
	}
	o.Flagged = sortedIDs(o.Flagged)
	h.mu.Lock()
	h.report.Outages = append(h.report.Outages, o)
	h.mu.Unlock()
	h.inject("%s back after %s; NeedsAttention seen on %d of the %d offboardings started while it was down",
		service, o.Down, len(o.Flagged), len(released))
	if len(released) > 0 && len(o.Flagged) == 0 {
		h.problem("%s outage: no offboarding in flight was flagged NeedsAttention while it was down", service)
	}
	return ctx.Err()
}
