package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
)

// SignalReschedule moves the last day of a scheduled offboarding; its
// payload is a RescheduleInput. Once access has been removed it is ignored.
const SignalReschedule = "reschedule"

// SignalRetryNow makes every step of an offboarding that waits to be tried
// again (an application down, a disable ignored) try at once, with its
// pauses starting over: an operator sends it after fixing the application
// (`starter retry`). It carries no payload.
const SignalRetryNow = "retry-now"

// Deprovisioning timings.
const (
	// settleAfterOnboarding is how long after a cancelled onboarding closed
	// one of its side effects can still land: a cancelled workflow does not
	// wait for its running activities to stop, and provisionOptions lets an
	// attempt run for up to 30 s. Sweeping again after this finds any
	// account such an attempt created.
	settleAfterOnboarding = time.Minute
	// awaitOnboardingPoll is how long one AwaitWorkflowClosed call waits.
	awaitOnboardingPoll = 2 * time.Minute
	// firstRetryDelay and maxRetryDelay bound the pause between two tries
	// of a step whose application is down.
	firstRetryDelay = time.Minute
	maxRetryDelay   = 10 * time.Minute
	// slowRetryAfter is how long a step may fail before it is tried only
	// every slowRetryDelay: an application that ignores a disable (policy
	// disable_fallback: flag) can keep a loop going for weeks, and every
	// try adds about ten events to the history; at 10 minutes that would
	// reach Temporal's history limit in a month, at 6 hours never in a
	// retention period.
	slowRetryAfter = 24 * time.Hour
	slowRetryDelay = 6 * time.Hour
)

// nextRetryDelay is the pause after delay before the next try of a step
// that has been failing for failingFor.
func nextRetryDelay(delay, failingFor time.Duration) time.Duration {
	if failingFor >= slowRetryAfter {
		return slowRetryDelay
	}
	return min(2*delay, maxRetryDelay)
}

// OffboardingInput starts a leaver. Like OnboardingInput it carries no
// secret.
type OffboardingInput struct {
	EmployeeID string `json:"employeeId"`
	// LastDay is the person's last working day. Access ends when that day
	// ends, at midnight UTC at the start of the next day, so the person
	// can work the whole day. Zero, or a day already over, removes access
	// at once.
	LastDay hr.Date `json:"lastDay,omitzero"`
	// Reason is HR's note, kept in the history for the audit trail.
	Reason string `json:"reason,omitempty"`
}

// RescheduleInput is the payload of SignalReschedule: the new last day,
// with the same meaning as OffboardingInput.LastDay.
type RescheduleInput struct {
	LastDay hr.Date `json:"lastDay,omitzero"`
}

// OffboardingResult is what a finished offboarding removed.
type OffboardingResult struct {
	EmployeeID string `json:"employeeId"`
	// Username is empty when the person never had one reserved: no account
	// existed anywhere and there was nothing to do.
	Username string `json:"username,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// AccessEndedAt is when the kill switch ran.
	AccessEndedAt time.Time `json:"accessEndedAt"`
	// Accounts are the person's accounts, sorted by application.
	Accounts []LeaverAccount `json:"accounts,omitempty"`
	// Skipped are accounts with the person's username that provisio did
	// not create for them, left untouched.
	Skipped []SkippedAccount `json:"skipped,omitempty"`
}

// LeaverAccount is what happened to the leaver's account in one
// application.
type LeaverAccount struct {
	Application string `json:"application"`
	// Disabled is true once logins are blocked (by this run or before it).
	Disabled bool `json:"disabled"`
	// SessionsEnded counts live sessions the disable terminated.
	SessionsEnded int `json:"sessionsEnded"`
	// Revoked are the entitlements the account held, all removed.
	Revoked []string `json:"revoked,omitempty"`
	// DeleteAfter is when the application's retention ends.
	DeleteAfter time.Time `json:"deleteAfter,omitzero"`
	// Deleted is true once the account is gone, DeletedAt since when.
	Deleted   bool      `json:"deleted"`
	DeletedAt time.Time `json:"deletedAt,omitzero"`
	// Kept is true when the run was cancelled during retention: the account
	// stays disabled and nothing deletes it.
	Kept bool `json:"kept,omitempty"`
	// Verified says how the run confirmed that the account can no longer
	// be used: "read-back" (the application, read back after the disable,
	// showed it disabled) or "fallback-delete" (the application ignored
	// the disable and the account was deleted instead, as its policy's
	// disable_fallback says). Empty until confirmed.
	Verified string `json:"verified,omitempty"`
	// Fallback says why the account was deleted before its retention
	// ended, when it was.
	Fallback string `json:"fallback,omitempty"`
}

// SkippedAccount is an account the leaver did not touch, and why.
type SkippedAccount struct {
	Application string `json:"application"`
	Reason      string `json:"reason"`
}

// Problem is a step that keeps failing. Deprovisioning retries it until
// it succeeds; only a Permanent problem (input that can never work) stops.
type Problem struct {
	Application string    `json:"application"`
	Step        string    `json:"step"`
	Error       string    `json:"error"`
	Since       time.Time `json:"since"`
	Permanent   bool      `json:"permanent,omitempty"`
}

// OffboardingState is the answer to QueryState.
type OffboardingState struct {
	State    string `json:"state"`
	Username string `json:"username,omitempty"`
	// LastDay is the last working day, when one was given.
	LastDay string `json:"lastDay,omitempty"`
	// AccessEndsAt is when access ends (scheduled) or ended.
	AccessEndsAt time.Time        `json:"accessEndsAt,omitzero"`
	Accounts     []LeaverAccount  `json:"accounts,omitempty"`
	Skipped      []SkippedAccount `json:"skipped,omitempty"`
	// NeedsAttention mirrors the search attribute: Problems is not empty.
	NeedsAttention bool      `json:"needsAttention,omitempty"`
	Problems       []Problem `json:"problems,omitempty"`
	// Detail says what the run is doing or waiting for.
	Detail string `json:"detail,omitempty"`
	// Failure explains a failed or cancelled run.
	Failure string `json:"failure,omitempty"`
}

// Offboarding removes a leaver's access. On the last day (at once when none
// is given) it pulls the kill switch: it cancels the person's onboarding if
// one still runs (a leaver wins over a joiner), disables every account in
// every application in parallel, which also ends live sessions, then
// revokes every entitlement, then deletes each account when its
// application's retention ends. A scheduled offboarding waits on a durable
// timer, moves with SignalReschedule and is retracted by cancelling the
// run, which then changes nothing.
//
// Every disable, revoke and delete is read back by its activity; a disable
// the application ignores follows the application's disable_fallback in
// policy (delete the account instead, or keep retrying flagged).
//
// Deprovisioning never compensates and never gives up: a step whose
// application is down is retried with growing pauses while the run carries
// NeedsAttention, and the other applications go on meanwhile: a disable
// that keeps failing holds up neither their revokes nor their deletions
// (since version "independent-disable-loops"), and the run ends only once
// every disable loop has. Only input
// that can never work fails the run, at the end, after everything else was
// done. Cancelling the run after the kill switch still completes the
// disable and revoke passes (half-removed access is never left behind);
// it only skips the deletions still to come, so the disabled accounts are
// kept, e.g. for a legal hold.
func Offboarding(ctx workflow.Context, in OffboardingInput) (OffboardingResult, error) {
	o := &offboarding{in: in, st: OffboardingState{State: StateScheduled, LastDay: in.LastDay.String()}}
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (OffboardingState, error) { return o.snapshot(), nil }); err != nil {
		return OffboardingResult{}, err
	}
	return o.run(ctx)
}

type offboarding struct {
	in OffboardingInput
	st OffboardingState
	// accessEnds is when the kill switch runs (or ran).
	accessEnds time.Time
	// apps holds each application the sweeps looked in, sorted by name.
	apps     []*leaverApp
	problems []Problem
	// attention is the value of AttrNeedsAttention last upserted.
	attention bool
	// deleting counts deletions in progress, for the state.
	deleting int
	// independent is set (workflow version "independent-disable-loops")
	// when a disable that keeps failing no longer holds up the other
	// applications: the sweep waits for each application's first try
	// only, and loops counts the disable loops still going, which the run
	// waits for before it ends.
	independent bool
	loops       workflow.WaitGroup
	// retries counts SignalRetryNow signals; a waiting step tries again
	// when it changes.
	retries int
	// pastSweep is set when the revoke phase has taken on the live
	// applications; runCtx is the run's own context, which late deletions
	// start their coroutine from.
	pastSweep bool
	runCtx    workflow.Context
}

// leaverApp is the run's knowledge of one application.
type leaverApp struct {
	acct LeaverAccount
	// exists is true once a sweep found the person's account here.
	exists bool
	// entitlements are what the account held at the last sweep.
	entitlements []string
	// failed is set by a permanent problem: later phases skip the app.
	failed bool
	// disabling is set while a disable loop runs for the app, so a second
	// sweep does not start another.
	disabling bool
	// handed is set once the run's revoke and delete phases took the app
	// on, or its own late disable loop did.
	handed bool
}

func (o *offboarding) snapshot() OffboardingState {
	st := o.st
	st.Accounts = o.accounts()
	st.Problems = slices.Clone(o.problems)
	st.NeedsAttention = len(o.problems) > 0
	return st
}

func (o *offboarding) accounts() []LeaverAccount {
	var out []LeaverAccount
	for _, a := range o.apps {
		if a.exists {
			acct := a.acct
			acct.Revoked = slices.Clone(acct.Revoked)
			out = append(out, acct)
		}
	}
	return out
}

func (o *offboarding) setState(ctx workflow.Context, state string) {
	o.st.State = state
	o.updateDetails(ctx)
	if err := workflow.UpsertTypedSearchAttributes(ctx, AttrLifecycleState.ValueSet(state)); err != nil {
		workflow.GetLogger(ctx).Warn("Cannot upsert state", "error", err)
	}
}

func (o *offboarding) setDetail(ctx workflow.Context, detail string) {
	o.st.Detail = detail
	o.updateDetails(ctx)
}

// updateDetails shows the state, the detail and the problems in the UI.
func (o *offboarding) updateDetails(ctx workflow.Context) {
	s := "State: " + o.st.State
	if o.st.Detail != "" {
		s += "\n" + o.st.Detail
	}
	for _, p := range o.problems {
		s += fmt.Sprintf("\nNeeds attention: %s: %s: %s", p.Application, p.Step, p.Error)
	}
	workflow.SetCurrentDetails(ctx, s)
}

func (o *offboarding) run(ctx workflow.Context) (OffboardingResult, error) {
	id := o.in.EmployeeID
	if !hr.ValidEmployeeID(id) {
		o.st.Failure = fmt.Sprintf("employee ID must be E followed by 6 digits, got %q", id)
		o.setState(ctx, StateFailed)
		return OffboardingResult{}, temporal.NewNonRetryableApplicationError("invalid offboarding: "+o.st.Failure, string(connectors.KindInvalid), nil)
	}
	// The starter sets these at start; a run started by other means is
	// found by the same filters.
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrEmployeeID.ValueSet(id), AttrLifecycleEvent.ValueSet(EventLeaver))

	resched := workflow.GetSignalChannel(ctx, SignalReschedule)
	retryNow := workflow.GetSignalChannel(ctx, SignalRetryNow)
	workflow.Go(ctx, func(gctx workflow.Context) {
		for retryNow.Receive(gctx, nil) {
			o.retries++
		}
	})
	o.schedule(ctx, o.in.LastDay)
	if o.accessEnds.After(workflow.Now(ctx)) {
		if err := o.waitForLastDay(ctx, resched); err != nil {
			o.st.Failure = "retracted before the last day ended: nothing was changed"
			o.setState(ctx, StateRetracted)
			return OffboardingResult{}, err
		}
	}
	workflow.Go(ctx, func(gctx workflow.Context) {
		for {
			var r RescheduleInput
			if !resched.Receive(gctx, &r) {
				return
			}
			workflow.GetLogger(gctx).Warn("Reschedule ignored: access was already removed", "lastDay", r.LastDay.String())
		}
	})
	return o.kill(ctx)
}

// schedule sets when access ends from a last day.
func (o *offboarding) schedule(ctx workflow.Context, lastDay hr.Date) {
	now := workflow.Now(ctx)
	o.st.LastDay = lastDay.String()
	o.accessEnds = now
	if !lastDay.IsZero() {
		t := lastDay.UTC()
		if end := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC); end.After(now) {
			o.accessEnds = end
		}
	}
	o.st.AccessEndsAt = o.accessEnds
}

// waitForLastDay sleeps until access ends, moving the wake-up when a
// reschedule arrives. It returns the cancellation error when the run is
// cancelled (retracted) meanwhile.
func (o *offboarding) waitForLastDay(ctx workflow.Context, resched workflow.ReceiveChannel) error {
	for {
		wait := o.accessEnds.Sub(workflow.Now(ctx))
		if wait <= 0 {
			return nil
		}
		o.setState(ctx, StateScheduled)
		o.setDetail(ctx, "access ends at "+o.accessEnds.Format(time.RFC3339))
		tctx, cancelTimer := workflow.WithCancel(ctx)
		timer := workflow.NewTimerWithOptions(tctx, wait,
			workflow.TimerOptions{Summary: "Wait for the end of the last day " + o.st.LastDay})
		var timerErr error
		fired := false
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(timer, func(f workflow.Future) {
			fired = true
			timerErr = f.Get(ctx, nil)
		})
		sel.AddReceive(resched, func(c workflow.ReceiveChannel, _ bool) {
			var r RescheduleInput
			c.Receive(ctx, &r)
			o.schedule(ctx, r.LastDay)
			workflow.GetLogger(ctx).Info("Offboarding rescheduled", "lastDay", r.LastDay.String(), "accessEnds", o.accessEnds)
		})
		sel.Select(ctx)
		if !fired {
			cancelTimer()
			continue
		}
		cancelTimer()
		if timerErr != nil {
			return timerErr
		}
	}
}

// kill removes access now and, after retention, the accounts.
func (o *offboarding) kill(ctx workflow.Context) (OffboardingResult, error) {
	// Disabling and revoking run on a context the run's cancellation does
	// not reach: stopping half-way would leave a leaver with access.
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	o.accessEnds = workflow.Now(ctx)
	o.st.AccessEndsAt = o.accessEnds
	// An application that accepts a disable and ignores it (policy
	// disable_fallback: flag) may keep its loop going for weeks: it must
	// not keep the other applications' entitlements and deletions waiting.
	o.independent = workflow.GetVersion(dctx, "independent-disable-loops", workflow.DefaultVersion, 1) >= 1
	o.loops = workflow.NewWaitGroup(dctx)
	o.setState(dctx, StateDisabling)
	o.setDetail(dctx, "")

	// A leaver wins: stop a running onboarding first, so it creates
	// nothing more and undoes what it did. Cancelling a run that does not
	// exist or has closed is harmless, so the outcome only matters to the
	// log; awaitOnboarding then learns how it ended.
	cancelHire := workflow.RequestCancelExternalWorkflow(dctx, OnboardingID(o.in.EmployeeID), "")
	// Temporary grants end with the person: each cancelled run revokes its
	// own grant. Looking them up needs Temporal's visibility, which must
	// not hold up the disable, so it runs alongside the sweep (which
	// revokes the same grants anyway).
	temps := workflow.NewWaitGroup(dctx)
	if workflow.GetVersion(dctx, "cancel-temporary-access", workflow.DefaultVersion, 1) >= 1 {
		temps.Add(1)
		workflow.Go(dctx, func(gctx workflow.Context) {
			defer temps.Done()
			o.cancelRuns(gctx, "temporary access", acts.CancelTemporaryAccess,
				activities.CancelTemporaryAccessInput{EmployeeID: o.in.EmployeeID})
		})
	}
	// Role changes end with the person too (one may wait for an approval
	// that would grant access after the sweep); each undoes its grants.
	if workflow.GetVersion(dctx, "cancel-role-changes", workflow.DefaultVersion, 1) >= 1 {
		temps.Add(1)
		workflow.Go(dctx, func(gctx workflow.Context) {
			defer temps.Done()
			o.cancelRuns(gctx, "role changes", acts.CancelRoleChanges,
				activities.CancelRoleChangesInput{EmployeeID: o.in.EmployeeID})
		})
	}
	o.sweep(dctx)
	if err := cancelHire.Get(dctx, nil); err != nil {
		workflow.GetLogger(dctx).Info("No onboarding to cancel", "error", err)
	}
	if o.awaitOnboarding(dctx) {
		o.setDetail(dctx, "looking again for accounts the cancelled onboarding may have left")
		o.sweep(dctx)
	}
	o.setDetail(dctx, "")
	o.setState(dctx, StateRevoking)
	// The applications to revoke and delete in now. An application whose
	// account is found later (its first reads failed) is handed on by its
	// own disable loop once the disable holds (finishLate).
	apps := o.live()
	for _, a := range apps {
		a.handed = true
	}
	o.pastSweep, o.runCtx = true, ctx
	o.revokeAll(dctx, apps)
	temps.Wait(dctx)

	if len(o.live()) > 0 {
		o.setState(ctx, StateRetention)
		o.deleteAll(ctx, apps)
	}
	// A disable still retrying ends when the application applies it, or
	// finds the account gone (deleted above when its retention ended).
	o.loops.Wait(dctx)
	if ctx.Err() != nil {
		var kept []string
		for _, a := range o.apps {
			if a.acct.Kept {
				kept = append(kept, a.acct.Application)
			}
		}
		o.st.Failure = "cancelled after access was removed"
		if len(kept) > 0 {
			o.st.Failure += "; accounts kept disabled, not deleted: " + strings.Join(kept, ", ")
		}
		o.setState(dctx, StateCancelled)
		return OffboardingResult{}, temporal.NewCanceledError(o.st.Failure)
	}
	if failed := o.permanentProblems(); len(failed) > 0 {
		o.st.Failure = strings.Join(failed, "; ")
		o.setState(dctx, StateFailed)
		return OffboardingResult{}, temporal.NewNonRetryableApplicationError(
			"offboarding of "+o.in.EmployeeID+" could not finish: "+o.st.Failure, "OffboardingFailed", nil)
	}
	if o.st.Username == "" {
		o.setDetail(dctx, "no username was ever reserved: no account anywhere")
	}
	o.setState(dctx, StateCompleted)
	return OffboardingResult{
		EmployeeID: o.in.EmployeeID, Username: o.st.Username, Reason: o.in.Reason,
		AccessEndedAt: o.accessEnds, Accounts: o.accounts(), Skipped: o.st.Skipped,
	}, nil
}

// sweep finds the person's accounts and disables every one found, all
// applications in parallel. An application that cannot be read is read
// again, in its own goroutine, until it answers, while the others go on.
func (o *offboarding) sweep(ctx workflow.Context) {
	var found activities.FindAccountsResult
	if err := o.persist(ctx, "usernames", "find accounts", func(c workflow.Context) error {
		return workflow.ExecuteActivity(deprovisionOptions(c, "Find accounts"), acts.FindAccounts,
			activities.FindAccountsInput{EmployeeID: o.in.EmployeeID}).Get(c, &found)
	}); err != nil {
		o.fail(ctx, nil, "usernames", "find accounts", err)
		return
	}
	if found.Username == "" {
		return
	}
	o.st.Username = found.Username
	wg := workflow.NewWaitGroup(ctx)
	for _, f := range found.Applications {
		a := o.app(f.Application)
		if a.failed || a.disabling {
			continue
		}
		wg.Add(1)
		if !o.independent {
			workflow.Go(ctx, func(gctx workflow.Context) {
				defer wg.Done()
				o.disableApp(gctx, a, found.Username, f, func() {})
			})
			continue
		}
		// The sweep waits for the first try only; a disable that fails
		// goes on retrying in its own loop, which the run waits for at
		// its end.
		o.loops.Add(1)
		a.disabling = true
		workflow.Go(ctx, func(gctx workflow.Context) {
			defer o.loops.Done()
			released := false
			release := func() {
				if !released {
					released = true
					wg.Done()
				}
			}
			defer release()
			o.disableApp(gctx, a, found.Username, f, release)
			a.disabling = false
			o.finishLate(gctx, a)
		})
	}
	wg.Wait(ctx)
	var touched []string
	for _, a := range o.apps {
		if a.exists {
			touched = append(touched, a.acct.Application)
		}
	}
	if len(touched) > 0 {
		_ = workflow.UpsertTypedSearchAttributes(ctx, AttrApplicationsTouched.ValueSet(touched))
	}
}

// disableApp disables the person's account in one application until the
// disable is verified (or the account is gone or deleted instead). It calls
// tried once a try has failed, so a sweep need not wait for the retries.
func (o *offboarding) disableApp(ctx workflow.Context, a *leaverApp, username string, f activities.FoundAccount, tried func()) {
	app := f.Application
	failed := func(err error) error {
		if err != nil {
			tried()
		}
		return err
	}
	if f.ErrorKind == string(connectors.KindInvalid) {
		o.fail(ctx, a, app, "find account", temporal.NewApplicationError(f.Error, f.ErrorKind))
		return
	}
	if f.Error != "" {
		err := o.persist(ctx, app, "find account", func(c workflow.Context) error {
			var r activities.FindAccountsResult
			if err := workflow.ExecuteActivity(deprovisionOptions(c, "Find account in "+app), acts.FindAccounts,
				activities.FindAccountsInput{EmployeeID: o.in.EmployeeID, Applications: []string{app}}).Get(c, &r); err != nil {
				return failed(err)
			}
			if len(r.Applications) != 1 {
				// The reservation vanished: there is nothing to look for.
				f = activities.FoundAccount{Application: app}
				return nil
			}
			if f = r.Applications[0]; f.Error != "" {
				return failed(temporal.NewApplicationError(f.Error, f.ErrorKind))
			}
			return nil
		})
		if err != nil {
			o.fail(ctx, a, app, "find account", err)
			return
		}
	}
	switch {
	case f.Foreign:
		o.skip(app, "an account with the username exists but was not created by provisio for this person")
		return
	case !f.Exists:
		if a.exists && !a.acct.Deleted {
			// Gone since the last sweep: the cancelled onboarding undid it.
			a.acct.Deleted, a.acct.DeletedAt = true, workflow.Now(ctx)
		}
		return
	}
	a.exists, a.acct.Deleted, a.acct.DeletedAt = true, false, time.Time{}
	a.entitlements = f.Entitlements
	a.acct.DeleteAfter = o.accessEnds.Add(f.Retention)
	// Disable even an account that reads as disabled: the call also ends
	// sessions that outlived an earlier disable, and reads the account
	// back.
	in := activities.AccountInput{App: app, Username: username, Audit: o.audit()}
	in.Audit.RequestedAt = workflow.Now(ctx)
	fallback := false
	err := o.persist(ctx, app, "disable account", func(c workflow.Context) error {
		if a.acct.Deleted {
			// Deleted meanwhile (its retention ended while the disable
			// kept failing): nothing is left to disable.
			return nil
		}
		if fallback {
			return failed(o.fallbackDelete(c, a, in))
		}
		var r connectors.DisableResponse
		in.Audit.Retry = retried(c)
		err := workflow.ExecuteActivity(deprovisionOptions(c, "Disable account and end sessions in "+app), acts.DisableAccount, in).Get(c, &r)
		switch {
		case isKind(err, connectors.KindNotFound):
			// Gone: the activity read that back and recorded it.
			a.acct.Deleted, a.acct.DeletedAt = true, workflow.Now(c)
			a.acct.Verified = ledger.VerifiedReadBack
			return nil
		case isKind(err, connectors.KindNotVerified) && f.DisableFallback == activities.FallbackDelete &&
			workflow.GetVersion(c, "disable-fallback-delete", workflow.DefaultVersion, 1) >= 1:
			// The application took the disable and ignored it, through
			// every quick retry; its policy prefers losing the account to
			// leaving it usable. Later tries go straight to the delete.
			fallback = true
			a.acct.Fallback = "the application ignored the disable (" + message(err) + "); deleted instead, before its retention ended"
			workflow.GetLogger(c).Warn("Disable ignored; deleting the account as the policy says", "application", app, "error", err)
			return failed(o.fallbackDelete(c, a, in))
		case err != nil:
			// A NotVerified disable under the flag fallback lands here: the
			// step is listed as a problem (NeedsAttention) and tried again
			// with growing pauses until the application applies it.
			return failed(err)
		}
		a.acct.Disabled = true
		a.acct.Verified = ledger.VerifiedReadBack
		a.acct.SessionsEnded += r.SessionsEnded
		return nil
	})
	if err != nil {
		o.fail(ctx, a, app, "disable account", err)
	}
}

// fallbackDelete deletes an account whose application ignored the
// disable, as a verified deletion the ledger marks fallback-delete.
func (o *offboarding) fallbackDelete(ctx workflow.Context, a *leaverApp, disable activities.AccountInput) error {
	in := disable
	in.Audit.Fallback = true
	in.Audit.Retry = retried(ctx)
	in.Audit = withNote(in.Audit, "disable ignored by the application; deleted instead (disable_fallback: delete)")
	app := in.App
	if err := workflow.ExecuteActivity(deprovisionOptions(ctx, "Delete account in "+app+": the disable was ignored"), acts.DeleteAccount, in).Get(ctx, nil); err != nil {
		return err
	}
	a.acct.Deleted, a.acct.DeletedAt = true, workflow.Now(ctx)
	a.acct.Verified = ledger.VerifiedFallbackDelete
	return nil
}

// finishLate revokes and, after its retention, deletes the account of an
// application whose disable settled after the revoke phase had taken on
// the others (its account could not be read until then).
func (o *offboarding) finishLate(ctx workflow.Context, a *leaverApp) {
	if !o.pastSweep || a.handed || !a.live() {
		return
	}
	a.handed = true
	o.revokeApp(ctx, a)
	if !a.live() {
		return
	}
	// The deletion waits on the run's own context, like deleteAll, so a
	// cancelled run keeps the account; it needs a coroutine of its own to
	// block on that context.
	o.loops.Add(1)
	workflow.Go(o.runCtx, func(rctx workflow.Context) {
		defer o.loops.Done()
		o.deleteApp(rctx, a)
	})
}

// awaitOnboarding waits until the person's onboarding (cancelled by kill)
// has closed and, unless it completed, until settleAfterOnboarding has
// passed since. It reports whether the onboarding may have changed
// something after the first sweep began, which calls for another sweep.
func (o *offboarding) awaitOnboarding(ctx workflow.Context) bool {
	wfID := OnboardingID(o.in.EmployeeID)
	for {
		var r activities.AwaitWorkflowClosedResult
		err := o.persist(ctx, "temporal", "wait for the onboarding to close", func(c workflow.Context) error {
			return workflow.ExecuteActivity(awaitOptions(c, "Wait for the cancelled onboarding to close"), acts.AwaitWorkflowClosed,
				activities.AwaitWorkflowClosedInput{WorkflowID: wfID, MaxWait: awaitOnboardingPoll}).Get(c, &r)
		})
		switch {
		case err != nil:
			// Cannot happen for a well-formed ID; sweeping again is the
			// safe answer.
			workflow.GetLogger(ctx).Error("Cannot learn whether the onboarding closed", "error", err)
			return true
		case !r.Found:
			return false
		case !r.Closed:
			o.setDetail(ctx, "waiting for the cancelled onboarding to undo its work")
			continue
		}
		settle := settleAfterOnboarding
		if r.Status == "completed" {
			// Every activity of a completed run returned: none is still in
			// flight.
			settle = 0
		}
		until := r.CloseTime.Add(settle)
		if until.Before(o.accessEnds) {
			// All it did happened before the first sweep began, which saw
			// it.
			return false
		}
		if wait := until.Sub(workflow.Now(ctx)); wait > 0 {
			o.setDetail(ctx, "the cancelled onboarding closed; waiting for its last steps to settle")
			_ = workflow.NewTimerWithOptions(ctx, wait, workflow.TimerOptions{Summary: "Let the cancelled onboarding settle"}).Get(ctx, nil)
		}
		return true
	}
}

// cancelRuns runs one of the activities that cancel the person's running
// workflows of a kind (temporary access, role changes), retrying like any
// deprovisioning step: each cancelled run then undoes its own access.
func (o *offboarding) cancelRuns(ctx workflow.Context, what string, activity, input any) {
	// Every cancel activity answers with the IDs it cancelled.
	var r struct {
		WorkflowIDs []string `json:"workflowIds"`
	}
	err := o.persist(ctx, "temporal", "cancel "+what, func(c workflow.Context) error {
		return workflow.ExecuteActivity(deprovisionOptions(c, "Cancel "+what), activity, input).Get(c, &r)
	})
	if err != nil {
		o.fail(ctx, nil, "temporal", "cancel "+what, err)
		return
	}
	if len(r.WorkflowIDs) > 0 {
		workflow.GetLogger(ctx).Info("Cancelled "+what, "workflows", r.WorkflowIDs)
	}
}

// revokeAll removes every entitlement of the accounts in apps, the
// applications in parallel.
func (o *offboarding) revokeAll(ctx workflow.Context, apps []*leaverApp) {
	wg := workflow.NewWaitGroup(ctx)
	for _, a := range apps {
		wg.Add(1)
		workflow.Go(ctx, func(gctx workflow.Context) {
			defer wg.Done()
			o.revokeApp(gctx, a)
		})
	}
	wg.Wait(ctx)
}

// revokeApp removes every entitlement the account held at the last sweep,
// one after another.
func (o *offboarding) revokeApp(ctx workflow.Context, a *leaverApp) {
	app := a.acct.Application
	for _, ent := range a.entitlements {
		in := activities.EntitlementInput{App: app, Username: o.st.Username, Entitlement: ent, Audit: o.audit()}
		in.Audit.RequestedAt = workflow.Now(ctx)
		err := o.persist(ctx, app, "revoke "+ent, func(c workflow.Context) error {
			in.Audit.Retry = retried(c)
			err := workflow.ExecuteActivity(deprovisionOptions(c, "Revoke "+ent+" in "+app), acts.RevokeEntitlement, in).Get(c, nil)
			if isKind(err, connectors.KindNotFound) {
				// The entitlement itself is gone: nothing is held.
				return nil
			}
			return err
		})
		if err != nil {
			o.fail(ctx, a, app, "revoke "+ent, err)
			return
		}
		a.acct.Revoked = append(a.acct.Revoked, ent)
	}
}

// deleteAll deletes each account of apps still live when its
// application's retention ends. ctx is the run's own context: cancelling
// the run keeps the accounts that are not deleted yet.
func (o *offboarding) deleteAll(ctx workflow.Context, apps []*leaverApp) {
	wg := workflow.NewWaitGroup(ctx)
	for _, a := range apps {
		if !a.live() {
			continue
		}
		wg.Add(1)
		workflow.Go(ctx, func(gctx workflow.Context) {
			defer wg.Done()
			o.deleteApp(gctx, a)
		})
	}
	wg.Wait(ctx)
}

// deleteApp waits for the end of the account's retention, then deletes it.
func (o *offboarding) deleteApp(ctx workflow.Context, a *leaverApp) {
	app := a.acct.Application
	if wait := a.acct.DeleteAfter.Sub(workflow.Now(ctx)); wait > 0 {
		if err := workflow.NewTimerWithOptions(ctx, wait, workflow.TimerOptions{
			Summary: "Retention of the account in " + app + " until " + a.acct.DeleteAfter.Format(time.DateOnly),
		}).Get(ctx, nil); err != nil {
			a.acct.Kept = true
			return
		}
	}
	if a.acct.Deleted {
		// Gone meanwhile: a disable still retrying found it so.
		return
	}
	o.deleting++
	o.setState(ctx, StateDeleting)
	in := activities.AccountInput{App: app, Username: o.st.Username, Audit: o.audit()}
	in.Audit.RequestedAt = workflow.Now(ctx)
	err := o.persist(ctx, app, "delete account", func(c workflow.Context) error {
		in.Audit.Retry = retried(c)
		return workflow.ExecuteActivity(deprovisionOptions(c, "Delete account in "+app), acts.DeleteAccount, in).Get(c, nil)
	})
	o.deleting--
	switch {
	case err == nil:
		a.acct.Deleted, a.acct.DeletedAt = true, workflow.Now(ctx)
		if a.acct.Verified == "" {
			// Its disable never held; the deletion, read back, did.
			a.acct.Verified = ledger.VerifiedReadBack
		}
	case ctx.Err() != nil:
		a.acct.Kept = true
	default:
		o.fail(ctx, a, app, "delete account", err)
	}
	if o.deleting == 0 && ctx.Err() == nil {
		o.setState(ctx, StateRetention)
	}
}

// audit is the ledger justification of the leaver's changes: no policy
// decides them, HR's reason is the note.
func (o *offboarding) audit() activities.Audit {
	return withNote(audit(o.in.EmployeeID, ledger.EventLeaver, ""), o.in.Reason)
}

// live are the applications whose account exists, is not deleted and has
// no permanent problem.
func (o *offboarding) live() []*leaverApp {
	var out []*leaverApp
	for _, a := range o.apps {
		if a.live() {
			out = append(out, a)
		}
	}
	return out
}

// live reports whether the account exists, is not deleted and has no
// permanent problem.
func (a *leaverApp) live() bool { return a.exists && !a.acct.Deleted && !a.failed }

// app returns the run's record of an application, adding it in name order.
func (o *offboarding) app(name string) *leaverApp {
	i, found := slices.BinarySearchFunc(o.apps, name, func(a *leaverApp, n string) int { return strings.Compare(a.acct.Application, n) })
	if !found {
		o.apps = slices.Insert(o.apps, i, &leaverApp{acct: LeaverAccount{Application: name}})
	}
	return o.apps[i]
}

func (o *offboarding) skip(app, reason string) {
	for _, s := range o.st.Skipped {
		if s.Application == app {
			return
		}
	}
	o.st.Skipped = append(o.st.Skipped, SkippedAccount{Application: app, Reason: reason})
}

// persist runs one deprovisioning step until it succeeds. Each try is an
// activity with a few quick retries of its own; after a failed try the
// step is listed as a problem, which sets NeedsAttention, and is tried
// again after a durable pause that grows to maxRetryDelay (slowRetryDelay
// once the step has failed for a day). It returns nil
// once the step succeeded (clearing its problem), the error of input that
// can never work, or the cancellation error when ctx is cancelled.
func (o *offboarding) persist(ctx workflow.Context, app, step string, try func(workflow.Context) error) error {
	delay, start := firstRetryDelay, workflow.Now(ctx)
	for tries := 0; ; tries++ {
		err := try(withRetried(ctx, tries > 0))
		if err == nil {
			o.resolve(ctx, app, step)
			return nil
		}
		if isKind(err, connectors.KindInvalid) || ctx.Err() != nil {
			o.resolve(ctx, app, step)
			return err
		}
		o.trouble(ctx, Problem{Application: app, Step: step, Error: message(err), Since: workflow.Now(ctx)})
		workflow.GetLogger(ctx).Warn("Deprovisioning step failed; retrying", "application", app, "step", step, "retryIn", delay, "error", err)
		asked := o.retries
		now, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout: delay, TimerOptions: workflow.TimerOptions{Summary: "Retry " + step + " in " + app},
		}, func() bool { return o.retries != asked })
		if err != nil {
			o.resolve(ctx, app, step)
			return err
		}
		if now {
			// An operator fixed something: try at once, and back off
			// from the start again if it still fails.
			delay, start = firstRetryDelay, workflow.Now(ctx)
			continue
		}
		delay = nextRetryDelay(delay, workflow.Now(ctx).Sub(start))
	}
}

// retriedKey marks the context a persist loop hands to a try after the
// first: steps that change an application tell their activity
// (Audit.Retry), so a change an earlier try made but could not record in
// the ledger is recorded now.
type retriedKey struct{}

func withRetried(ctx workflow.Context, again bool) workflow.Context {
	return workflow.WithValue(ctx, retriedKey{}, again)
}

// retried reports whether ctx is a persist loop's second or later try.
func retried(ctx workflow.Context) bool {
	again, _ := ctx.Value(retriedKey{}).(bool)
	return again
}

// fail records a step that can never succeed; the run fails at its end,
// after every other application is done.
func (o *offboarding) fail(ctx workflow.Context, a *leaverApp, app, step string, err error) {
	if a != nil {
		a.failed = true
	}
	o.trouble(ctx, Problem{Application: app, Step: step, Error: message(err), Since: workflow.Now(ctx), Permanent: true})
}

// trouble adds or updates a problem and raises NeedsAttention.
func (o *offboarding) trouble(ctx workflow.Context, p Problem) {
	i := slices.IndexFunc(o.problems, func(q Problem) bool { return q.Application == p.Application && q.Step == p.Step })
	if i >= 0 {
		p.Since = o.problems[i].Since
		o.problems[i] = p
	} else {
		o.problems = append(o.problems, p)
	}
	o.flagAttention(ctx)
}

// resolve drops the problem of a step, and NeedsAttention with the last
// one.
func (o *offboarding) resolve(ctx workflow.Context, app, step string) {
	o.problems = slices.DeleteFunc(o.problems, func(q Problem) bool {
		return q.Application == app && q.Step == step && !q.Permanent
	})
	o.flagAttention(ctx)
}

func (o *offboarding) flagAttention(ctx workflow.Context) {
	o.updateDetails(ctx)
	want := len(o.problems) > 0
	if want == o.attention {
		return
	}
	o.attention = want
	if err := workflow.UpsertTypedSearchAttributes(ctx, AttrNeedsAttention.ValueSet(want)); err != nil {
		workflow.GetLogger(ctx).Warn("Cannot upsert NeedsAttention", "error", err)
	}
}

func (o *offboarding) permanentProblems() []string {
	var out []string
	for _, p := range o.problems {
		if p.Permanent {
			out = append(out, fmt.Sprintf("%s: %s: %s", p.Application, p.Step, p.Error))
		}
	}
	return out
}

// isKind reports whether err is an ApplicationError of the connector kind.
func isKind(err error, kind connectors.ErrorKind) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && ae.Type() == string(kind)
}

// message is the operator-facing text of an activity error.
func message(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Message()
	}
	return err.Error()
}
