package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/workflows"
)

// send starts an event through events.Starter as the CLI, the sync and
// the webhook do, retrying while the server (or anything Start needs) is
// unreachable: a fault must not lose an HR event. A refusal is final.
func (h *harness) send(ctx context.Context, e events.Event) (events.Receipt, error) {
	backoff := 500 * time.Millisecond
	deadline := time.Now().Add(5 * time.Minute)
	for {
		r, err := h.starter.Start(ctx, e)
		if err == nil {
			return r, nil
		}
		if events.IsInvalid(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return r, fmt.Errorf("%s of %s: %w", e.Type, e.Subject(), err)
		}
		h.retries.Add(1)
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// hire sends a subject's hire and reports whether it was accepted.
func (h *harness) hire(ctx context.Context, s *subject) bool {
	p := s.person
	if _, err := h.send(ctx, events.Event{Type: events.TypeHire, Person: &p}); err != nil {
		h.problem("hire not accepted: %v", err)
		return false
	}
	h.known.add(p.EmployeeID)
	s.set(func(s *subject) { s.hired = true })
	return true
}

// move sends a mover's move. It is sent right after the hire: the
// person's sequencer holds it until the onboarding is done, and Start
// returns once the sequencer has queued it, which takes a worker.
func (h *harness) move(ctx context.Context, s *subject) {
	m := *s.moved
	if _, err := h.send(ctx, events.Event{Type: events.TypeMove, Person: &m}); err != nil {
		h.problem("move not accepted: %v", err)
		return
	}
	s.set(func(s *subject) { s.moveQueued = true })
}

// terminate sends a leaver's termination (now, no last day).
func (h *harness) terminate(ctx context.Context, s *subject) {
	if _, err := h.send(ctx, events.Event{Type: events.TypeTerminate, EmployeeID: s.person.EmployeeID, Reason: "chaos test"}); err != nil {
		h.problem("termination not accepted: %v", err)
		return
	}
	s.set(func(s *subject) { s.terminated = true })
}

// partialFailure takes SUPERUSER from the PostgreSQL connector's role, so
// it may no longer create roles, hires the doomed people, waits for their
// onboardings to end, and gives the privilege back. Each onboarding has
// LDAP and SCIM accounts by then (applications are provisioned in
// parallel and the run waits for all of them before it compensates); the
// final comparison and the ledger show compensation removed them.
func (h *harness) partialFailure(ctx context.Context) error {
	var doomed []*subject
	for _, s := range h.subjects {
		if s.role == roleDoomed {
			doomed = append(doomed, s)
		}
	}
	if len(doomed) == 0 {
		return nil
	}
	if _, err := h.admin.Exec(ctx, "ALTER ROLE "+connectorRole+" NOSUPERUSER"); err != nil {
		return fmt.Errorf("partial failure: take SUPERUSER from %s: %w", connectorRole, err)
	}
	h.inject("partial failure: PostgreSQL role %s lost SUPERUSER (may no longer create roles); hiring %d people who need a PostgreSQL account",
		connectorRole, len(doomed))
	var wg sync.WaitGroup
	for _, s := range doomed {
		wg.Add(1)
		go func() { defer wg.Done(); h.hire(ctx, s) }()
	}
	wg.Wait()
	failed := 0
	for _, s := range doomed {
		st, err := h.awaitClosed(ctx, workflows.OnboardingID(s.person.EmployeeID), 5*time.Minute)
		switch {
		case err != nil:
			h.problem("partial failure: onboarding of %s did not end: %v", s.person.EmployeeID, err)
		case st != enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
			h.problem("partial failure: onboarding of %s ended %s, want failed (PostgreSQL refused the account)", s.person.EmployeeID, events.StatusName(st))
		default:
			failed++
		}
	}
	if _, err := h.admin.Exec(ctx, "ALTER ROLE "+connectorRole+" SUPERUSER"); err != nil {
		return fmt.Errorf("partial failure: give SUPERUSER back to %s: %w", connectorRole, err)
	}
	h.inject("partial failure over: %s has SUPERUSER again; %d of %d onboardings failed for good and compensated", connectorRole, failed, len(doomed))
	return nil
}

// awaitClosed waits until the workflow's latest run is closed and returns
// its status. A run not found yet (a move still queued) is waited for.
func (h *harness) awaitClosed(ctx context.Context, id string, timeout time.Duration) (enumspb.WorkflowExecutionStatus, error) {
	var status enumspb.WorkflowExecutionStatus
	err := waitFor(ctx, timeout, time.Second, func(ctx context.Context) error {
		desc, err := h.client.DescribeWorkflow(ctx, id, "")
		if err != nil {
			return err
		}
		status = desc.Status
		if status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return errors.New("still running")
		}
		return nil
	})
	return status, err
}

// load sends the hires evenly over the spread, the moves behind them and
// the terminations once each leaver is onboarded, while the fault
// schedule runs. It returns once every event was sent.
func (h *harness) load(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var load []*subject
	for _, s := range h.subjects {
		if s.role != roleDoomed {
			load = append(load, s)
		}
	}
	start := time.Now()
	h.logf("load: %d hires over %s (%d of them move, %d leave)", h.sc.Hires, h.sc.Spread, h.sc.Moves, h.sc.Leavers)
	go h.monitor(ctx, load)

	var hires sync.WaitGroup
	hires.Add(1)
	go func() {
		defer hires.Done()
		var each, moves sync.WaitGroup
		sem := make(chan struct{}, 16)
		for i, s := range load {
			at := time.Duration(int64(h.sc.Spread) * int64(i) / int64(len(load)))
			if !sleepUntil(ctx, start.Add(at)) {
				break
			}
			sem <- struct{}{}
			each.Add(1)
			go func() {
				defer func() { <-sem; each.Done() }()
				if h.hire(ctx, s) && s.role == roleMover {
					// Outside the hires' limit: a move waits for a
					// worker to queue it, which must not slow the hires.
					moves.Add(1)
					go func() { defer moves.Done(); h.move(ctx, s) }()
				}
			}()
		}
		each.Wait()
		moves.Wait()
	}()

	leavers := &leaverPool{h: h}
	for _, s := range load {
		if s.role == roleLeaver {
			leavers.all = append(leavers.all, s)
		}
	}
	if err := h.faults(ctx, start, leavers); err != nil {
		cancel()
		hires.Wait()
		leavers.wait()
		return err
	}
	hires.Wait()
	h.logf("load: every hire and move sent; terminating the remaining leavers as they are onboarded")
	leavers.releaseRest(ctx, h.sc.Settle)
	leavers.wait()
	return ctx.Err()
}

// monitor follows the onboardings through visibility, marking each
// completed one (a leaver may be terminated once onboarded), and logs
// progress every ten seconds.
func (h *harness) monitor(ctx context.Context, load []*subject) {
	byID := map[string]*subject{}
	for _, s := range load {
		byID[s.person.EmployeeID] = s
	}
	lastLog := time.Now()
	for {
		if !sleepUntil(ctx, time.Now().Add(2*time.Second)) {
			return
		}
		ids, err := h.list(ctx, "WorkflowType = 'Onboarding' AND ExecutionStatus = 'Completed'")
		if err != nil {
			continue // the server may be restarting
		}
		for _, id := range ids {
			if s := byID[strings.TrimPrefix(id, "onboarding-")]; s != nil {
				s.set(func(s *subject) { s.onboarded = true })
			}
		}
		if time.Since(lastLog) >= 10*time.Second {
			lastLog = time.Now()
			hired, onboarded, terminated := 0, 0, 0
			for _, s := range load {
				s.get(func(s *subject) bool {
					hired += b2i(s.hired)
					onboarded += b2i(s.onboarded)
					terminated += b2i(s.terminated)
					return false
				})
			}
			starts, _ := h.worker.counts()
			h.logf("progress: %d/%d hired, %d onboarded, %d/%d terminated; worker starts %d, event retries %d",
				hired, len(load), onboarded, terminated, h.sc.Leavers, starts, h.retries.Load())
		}
	}
}

// list returns the workflow IDs a visibility query matches.
func (h *harness) list(ctx context.Context, query string) ([]string, error) {
	var ids []string
	var token []byte
	for {
		resp, err := h.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: query, PageSize: 1000, NextPageToken: token,
		})
		if err != nil {
			return nil, err
		}
		for _, e := range resp.GetExecutions() {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return ids, nil
		}
	}
}

// leaverPool terminates leavers in batches as the faults call for them,
// always ones already onboarded (a leaver during a hire is another test).
type leaverPool struct {
	h   *harness
	all []*subject
	wg  sync.WaitGroup
}

// eligible are the leavers onboarded and not yet released.
func (p *leaverPool) eligible() []*subject {
	var out []*subject
	for _, s := range p.all {
		if s.get(func(s *subject) bool { return s.onboarded && !s.released }) {
			out = append(out, s)
		}
	}
	return out
}

// remaining counts the leavers not released yet.
func (p *leaverPool) remaining() int {
	n := 0
	for _, s := range p.all {
		if !s.get(func(s *subject) bool { return s.released }) {
			n++
		}
	}
	return n
}

// release terminates up to n eligible leavers and returns their IDs.
func (p *leaverPool) release(ctx context.Context, n int) []string {
	var ids []string
	for _, s := range p.eligible() {
		if len(ids) == n {
			break
		}
		s.set(func(s *subject) { s.released = true })
		ids = append(ids, s.person.EmployeeID)
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.h.terminate(ctx, s) }()
	}
	return ids
}

// awaitEligible waits up to timeout until a leaver can be released.
func (p *leaverPool) awaitEligible(ctx context.Context, timeout time.Duration) bool {
	return waitFor(ctx, timeout, time.Second, func(context.Context) error {
		if len(p.eligible()) > 0 {
			return nil
		}
		return errors.New("no leaver onboarded yet")
	}) == nil
}

// releaseRest terminates every remaining leaver as soon as it is
// onboarded, giving up after timeout (the settle phase then reports the
// onboardings that never completed).
func (p *leaverPool) releaseRest(ctx context.Context, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for p.remaining() > 0 && time.Now().Before(deadline) {
		p.release(ctx, len(p.all))
		if !sleepUntil(ctx, time.Now().Add(time.Second)) {
			return
		}
	}
	if n := p.remaining(); n > 0 {
		p.h.problem("%d leavers were never onboarded, so never terminated", n)
	}
}

func (p *leaverPool) wait() { p.wg.Wait() }

// sleepUntil sleeps until t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(time.Until(t)):
		return true
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sortedIDs returns ids sorted, for stable reports.
func sortedIDs(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}
