package harness

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/verify"
	"github.com/provisio-dev/provisio/workflows"
)

// run kinds, as the report counts them.
const (
	kindOnboarding  = "onboarding"
	kindMover       = "role change"
	kindOffboarding = "offboarding"
)

// tracked is one run the events started, and how it stands.
type tracked struct {
	id, kind string
	subject  *subject
	status   enumspb.WorkflowExecutionStatus
	state    string
	flagged  bool
	seen     bool
}

// done reports whether the run is over: closed, or for an offboarding in
// retention with nothing left to retry (deleting the accounts waits for
// the retention period, 30 days and more).
func (t *tracked) done() bool {
	if !t.seen {
		return false
	}
	if t.status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return true
	}
	return t.kind == kindOffboarding && t.state == workflows.StateRetention && !t.flagged
}

func (h *harness) trackedRuns() []*tracked {
	var out []*tracked
	for _, s := range h.subjects {
		var hired, moved, left bool
		s.get(func(s *subject) bool { hired, moved, left = s.hired, s.moveQueued, s.terminated; return false })
		if hired {
			out = append(out, &tracked{id: workflows.OnboardingID(s.person.EmployeeID), kind: kindOnboarding, subject: s})
		}
		if moved {
			out = append(out, &tracked{id: s.moverID(), kind: kindMover, subject: s})
		}
		if left {
			out = append(out, &tracked{id: workflows.OffboardingID(s.person.EmployeeID), kind: kindOffboarding, subject: s})
		}
	}
	return out
}

// settle waits until every run the events started is over, then checks
// how each ended: onboardings completed (failed for the doomed), role
// changes completed, offboardings in retention with no problem left; and
// no run of any kind failed, timed out or was terminated.
func (h *harness) settle(ctx context.Context) error {
	runs := h.trackedRuns()
	h.logf("settle: waiting for %d runs to finish (at most %s)", len(runs), h.sc.Settle)
	deadline := time.Now().Add(h.sc.Settle)
	lastLog := time.Now()
	for {
		var pending []*tracked
		for _, r := range runs {
			if !r.done() {
				pending = append(pending, r)
			}
		}
		h.describe(ctx, pending)
		open := 0
		for _, r := range pending {
			if !r.done() {
				open++
			}
		}
		if open == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		if time.Since(lastLog) >= 15*time.Second {
			lastLog = time.Now()
			h.logf("settle: %d runs still open, e.g. %s", open, describeOpen(pending, 3))
		}
		sleepUntil(ctx, time.Now().Add(3*time.Second))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	h.report.Runs = map[string]int{}
	for _, r := range runs {
		h.report.Runs[r.kind+" "+r.outcome()]++
		want := "completed"
		switch {
		case r.kind == kindOnboarding && r.subject.role == roleDoomed:
			want = "failed"
		case r.kind == kindOffboarding:
			want = "running (" + workflows.StateRetention + ")"
		}
		if got := r.outcome(); got != want && !(r.kind == kindOffboarding && got == "completed") {
			h.problem("%s %s ended %s, want %s", r.kind, r.id, got, want)
		}
	}
	h.logf("settle: done")
	// Every other run on the private server (sequencers, temporary access)
	// must not have failed either.
	bad, err := h.list(ctx, "ExecutionStatus = 'Failed' OR ExecutionStatus = 'TimedOut' OR ExecutionStatus = 'Terminated'")
	if err != nil {
		return fmt.Errorf("list failed runs: %w", err)
	}
	doomed := map[string]bool{}
	for _, s := range h.subjects {
		if s.role == roleDoomed {
			doomed[workflows.OnboardingID(s.person.EmployeeID)] = true
		}
	}
	for _, id := range bad {
		if !doomed[id] && !slices.ContainsFunc(runs, func(r *tracked) bool { return r.id == id }) {
			h.problem("run %s failed, timed out or was terminated", id)
		}
	}
	return nil
}

// outcome is how the run stands, in words.
func (t *tracked) outcome() string {
	switch {
	case !t.seen:
		return "never started"
	case t.status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && t.flagged:
		return "running (" + t.state + ", needs attention)"
	case t.status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return "running (" + t.state + ")"
	}
	return events.StatusName(t.status)
}

func describeOpen(runs []*tracked, n int) string {
	var parts []string
	for _, r := range runs {
		if !r.done() && len(parts) < n {
			parts = append(parts, r.id+": "+r.outcome())
		}
	}
	return strings.Join(parts, "; ")
}

// describe refreshes the runs from the server, a few at a time.
func (h *harness) describe(ctx context.Context, runs []*tracked) {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			desc, err := h.client.DescribeWorkflow(ctx, r.id, "")
			if err != nil {
				// Not found: a move still queued behind its sequencer.
				return
			}
			r.seen, r.status = true, desc.Status
			r.state, _ = desc.TypedSearchAttributes.GetKeyword(workflows.AttrLifecycleState)
			r.flagged, _ = desc.TypedSearchAttributes.GetBool(workflows.AttrNeedsAttention)
		}()
	}
	wg.Wait()
}

// verify lists every account of the three applications through the
// connectors and compares them with what policy and the events say each
// person should hold, then the access ledger with the applications, and
// checks that compensation removed the doomed hires' accounts.
func (h *harness) verify(ctx context.Context) error {
	snap, err := verify.Collect(ctx, h.conns)
	if err != nil {
		return err
	}
	byEmployee := snap.ByEmployee()
	want := make([]verify.Person, 0, len(h.subjects))
	var diffs []verify.Difference
	for _, s := range h.subjects {
		eid := s.person.EmployeeID
		name, _, err := h.usernames.Lookup(ctx, eid)
		if err != nil {
			return err
		}
		p, err := expected(h.policy, s, name)
		if err != nil {
			return err
		}
		want = append(want, p)
		holdings, err := h.ledger.Holdings(ctx, eid)
		if err != nil {
			return err
		}
		diffs = append(diffs, verify.Ledger(eid, holdings, byEmployee[eid])...)
		if s.role == roleDoomed {
			if err := h.checkCompensation(ctx, eid); err != nil {
				return err
			}
		}
	}
	diffs = append(verify.Compare(want, snap, verify.Options{Strict: true}), diffs...)
	h.report.Summary = verify.Summarize(want, snap, diffs)
	h.report.Differences = diffs
	for _, d := range diffs {
		h.logf("DIFFERENCE %s", d)
	}
	return nil
}

// Compensation is what the ledger shows of one doomed hire: the
// applications where the onboarding created an account and the ones
// where compensation deleted it again.
type Compensation struct {
	EmployeeID string   `json:"employeeId"`
	Created    []string `json:"created"`
	Removed    []string `json:"removed"`
}

// checkCompensation reads the doomed hire's trail: PostgreSQL refused the
// account, so it must have none there, while every other application that
// got one must show it deleted by compensation.
func (h *harness) checkCompensation(ctx context.Context, eid string) error {
	trail, err := h.ledger.Trail(ctx, eid, time.Time{})
	if err != nil {
		return err
	}
	created, removed := map[string]bool{}, map[string]bool{}
	for _, e := range trail {
		switch {
		case e.Action == ledger.ActionCreated:
			created[e.Application] = true
		case e.Action == ledger.ActionDeleted && e.Event == ledger.EventCompensation:
			removed[e.Application] = true
		}
	}
	c := Compensation{EmployeeID: eid, Created: slices.Sorted(maps.Keys(created)), Removed: slices.Sorted(maps.Keys(removed))}
	h.mu.Lock()
	h.report.Compensated = append(h.report.Compensated, c)
	h.mu.Unlock()
	switch {
	case created["postgres"]:
		h.problem("partial failure: %s got a PostgreSQL account although the connector could not create roles", eid)
	case len(created) == 0:
		h.problem("partial failure: %s got no account anywhere, so compensation had nothing to remove", eid)
	case !slices.Equal(c.Created, c.Removed):
		h.problem("partial failure: %s had accounts created in %v but compensation removed only %v", eid, c.Created, c.Removed)
	}
	return nil
}
