package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
)

// Names of the messages a temporary-access run answers, besides QueryState
// (TemporaryAccessState) and the approval messages (UpdateDecide,
// QueryApprovals).
const (
	// UpdateExtend asks to move the expiry later: ExtendInput in,
	// ExtendResult out. Its validator refuses, without a trace in the
	// history, a grant that is not held, a second extension while one
	// waits, and an expiry further than the policy's max_duration from now.
	UpdateExtend = "extend"
	// UpdateRevoke ends the grant now: RevokeInput in, RevokeResult out.
	UpdateRevoke = "revoke"
)

// Extension states, the values of Extension.State.
const (
	ExtensionWaiting   = "waiting-approval"
	ExtensionApplied   = "extended"
	ExtensionRejected  = "rejected"
	ExtensionCancelled = "cancelled"
)

// Limits of a temporary-access run.
const (
	// maxExtensionsPerRun continues a run as new after this many
	// extensions, on top of the server's own suggestion, so a grant
	// extended for years keeps a short history.
	maxExtensionsPerRun = 20
	// keptRecords bounds the extensions and approval rounds carried into a
	// continued run; older ones stay in the earlier runs' histories.
	keptRecords = 20
)

// TemporaryAccessInput asks for one entitlement for a while.
type TemporaryAccessInput struct {
	EmployeeID  string `json:"employeeId"`
	Application string `json:"application"`
	Entitlement string `json:"entitlement"`
	// Duration is the time asked for; zero means the default (90 days).
	// The policy's max_duration caps it.
	Duration time.Duration `json:"duration,omitempty"`
	// RequestedBy is who asked (an employee ID); empty means the person.
	RequestedBy string `json:"requestedBy,omitempty"`
	// Justification is kept with the grant for the audit trail.
	Justification string `json:"justification,omitempty"`
	// Continued is the state a run that continued as new hands over; nil
	// for a new request.
	Continued *TemporaryAccessState `json:"continued,omitempty"`
}

// ExtendInput asks to move the expiry of a held grant by Duration.
type ExtendInput struct {
	Duration      time.Duration `json:"duration"`
	RequestedBy   string        `json:"requestedBy"`
	Justification string        `json:"justification,omitempty"`
}

// ExtendResult says what became of an extension: applied at once, or
// waiting for approval under RequestID.
type ExtendResult struct {
	Extension Extension `json:"extension"`
	// RequestID is the approval request to decide when the extension waits.
	RequestID string `json:"requestId,omitempty"`
}

// RevokeInput ends the grant before its expiry.
type RevokeInput struct {
	RequestedBy string `json:"requestedBy"`
	Reason      string `json:"reason,omitempty"`
}

// RevokeResult is the run's state once the revocation was accepted; the
// revocation itself runs right after.
type RevokeResult struct {
	State string `json:"state"`
}

// Extension is one request to hold the grant longer.
type Extension struct {
	RequestedBy   string        `json:"requestedBy"`
	RequestedAt   time.Time     `json:"requestedAt"`
	Duration      time.Duration `json:"duration"`
	Justification string        `json:"justification,omitempty"`
	State         string        `json:"state"`
	// ExpiresBefore and ExpiresAfter are the expiry before and after an
	// applied extension.
	ExpiresBefore time.Time `json:"expiresBefore,omitzero"`
	ExpiresAfter  time.Time `json:"expiresAfter,omitzero"`
	// Reason says why an extension was not applied.
	Reason string `json:"reason,omitempty"`
}

// TemporaryAccessState is the answer to QueryState, and the result.
type TemporaryAccessState struct {
	State         string    `json:"state"`
	EmployeeID    string    `json:"employeeId"`
	Application   string    `json:"application"`
	Entitlement   string    `json:"entitlement"`
	Username      string    `json:"username,omitempty"`
	RequestedBy   string    `json:"requestedBy,omitempty"`
	Justification string    `json:"justification,omitempty"`
	PolicyVersion string    `json:"policyVersion,omitempty"`
	RequestedAt   time.Time `json:"requestedAt"`
	// Duration is the first grant's length: what was asked for (or the
	// default), capped to MaxDuration when Capped.
	Duration    time.Duration `json:"duration,omitempty"`
	Capped      bool          `json:"capped,omitempty"`
	MaxDuration time.Duration `json:"maxDuration,omitempty"`
	// RemindBefore is how long before ExpiresAt the holder is reminded.
	RemindBefore           time.Duration `json:"remindBefore,omitempty"`
	ExtensionNeedsApproval bool          `json:"extensionNeedsApproval,omitempty"`
	// GrantedAt is when the entitlement was granted; zero until then.
	GrantedAt time.Time `json:"grantedAt,omitzero"`
	// ExpiresAt is when the grant is revoked unless extended.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	// RemindAt is when the reminder is due, RemindedAt when the last one
	// went out and Reminder what it said.
	RemindAt   time.Time `json:"remindAt,omitzero"`
	RemindedAt time.Time `json:"remindedAt,omitzero"`
	Reminder   string    `json:"reminder,omitempty"`
	// AccountCreated means this grant created the account in the
	// application, so it is deleted again when the grant ends.
	AccountCreated bool        `json:"accountCreated,omitempty"`
	Extensions     []Extension `json:"extensions,omitempty"`
	// Approvals are every approval round, the grant's and each
	// extension's, oldest first.
	Approvals []ApprovalRequest `json:"approvals,omitempty"`
	// EndedAt, EndedBy and EndReason say how the grant ended.
	EndedAt   time.Time `json:"endedAt,omitzero"`
	EndedBy   string    `json:"endedBy,omitempty"`
	EndReason string    `json:"endReason,omitempty"`
	// Problems are revocation steps that keep failing (NeedsAttention).
	Problems []Problem `json:"problems,omitempty"`
	Failure  string    `json:"failure,omitempty"`
	// Runs counts the runs this grant continued as new through.
	Runs int `json:"runs,omitempty"`
}

// TemporaryAccessResult is how a grant ended.
type TemporaryAccessResult struct {
	TemporaryAccessState
}

// TemporaryAccess grants one entitlement for a while, as one long-lived
// workflow per grant: it plans the request from policy (which caps the
// duration and names the approvers), waits for the approvals, creates the
// account in the application if the person has none there, grants, reminds
// the holder RemindBefore ahead of the expiry and revokes at the expiry
// (deleting the account again if it created it). UpdateExtend moves the
// expiry (after a new approval round when the policy says so) and
// UpdateRevoke ends the grant at once. Cancelling the run (a leaver does)
// revokes too. Revoking never gives up: a failing step is retried with
// growing pauses while the run carries NeedsAttention.
//
// Extensions count from the current expiry, and the new expiry may lie at
// most the policy's max_duration ahead of the moment the extension is
// asked for (and applied): the holder never has more than one maximal
// grant ahead of them, but a grant still needed can be renewed for ever.
func TemporaryAccess(ctx workflow.Context, in TemporaryAccessInput) (TemporaryAccessResult, error) {
	t := &tempAccess{in: in}
	if in.Continued != nil {
		t.st = *in.Continued
		t.st.Runs++
		t.past = t.st.Approvals
	} else {
		t.st = TemporaryAccessState{
			State: StatePlanning, EmployeeID: in.EmployeeID, Application: in.Application, Entitlement: in.Entitlement,
			RequestedBy: in.RequestedBy, Justification: in.Justification, RequestedAt: workflow.Now(ctx),
		}
		if t.st.RequestedBy == "" {
			t.st.RequestedBy = in.EmployeeID
		}
	}
	t.book = approvalBook{workflowID: TemporaryAccessID(in.EmployeeID, in.Application, in.Entitlement), employeeID: in.EmployeeID}
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (TemporaryAccessState, error) { return t.snapshot(), nil }); err != nil {
		return TemporaryAccessResult{}, err
	}
	if err := t.book.register(ctx); err != nil {
		return TemporaryAccessResult{}, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateExtend, t.extend, workflow.UpdateHandlerOptions{Validator: t.validateExtend}); err != nil {
		return TemporaryAccessResult{}, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRevoke, t.revoke, workflow.UpdateHandlerOptions{Validator: t.validateRevoke}); err != nil {
		return TemporaryAccessResult{}, err
	}
	return t.run(ctx)
}

type tempAccess struct {
	in   TemporaryAccessInput
	st   TemporaryAccessState
	book approvalBook
	// past are the closed approval rounds; book holds the current one.
	past []ApprovalRequest
	// saga undoes a grant that failed half-way.
	saga saga
	// accountExists is what the plan found in the application.
	accountExists bool
	// revokeReq is set by UpdateRevoke.
	revokeReq *RevokeInput
	// extending is set while an extension is planned or waits for approval.
	extending bool
	// rev changes whenever the expiry moves, to wake the wait.
	rev int
	// extensions counts the extensions applied in this run.
	extensions int
	attention  bool
}

func (t *tempAccess) snapshot() TemporaryAccessState {
	st := t.st
	st.Extensions = slices.Clone(t.st.Extensions)
	st.Problems = slices.Clone(t.st.Problems)
	st.Approvals = t.approvals()
	return st
}

// approvals are the closed rounds, then the current one if it is not
// archived yet.
func (t *tempAccess) approvals() []ApprovalRequest {
	out := make([]ApprovalRequest, 0, len(t.past)+len(t.book.reqs))
	for _, r := range t.past {
		out = append(out, r.clone())
	}
	for i := range t.book.reqs {
		out = append(out, t.book.reqs[i].clone())
	}
	return out
}

// archive moves the current approval round to the past ones.
func (t *tempAccess) archive() {
	for i := range t.book.reqs {
		t.past = append(t.past, t.book.reqs[i].clone())
	}
	t.book.reqs, t.book.planned = nil, false
}

func (t *tempAccess) setState(ctx workflow.Context, state string) {
	t.st.State = state
	t.details(ctx)
	if err := workflow.UpsertTypedSearchAttributes(ctx, AttrLifecycleState.ValueSet(state)); err != nil {
		workflow.GetLogger(ctx).Warn("Cannot upsert state", "error", err)
	}
}

func (t *tempAccess) details(ctx workflow.Context) {
	s := fmt.Sprintf("State: %s\n%s/%s for %s", t.st.State, t.st.Application, t.st.Entitlement, t.st.EmployeeID)
	if !t.st.ExpiresAt.IsZero() && t.st.EndedAt.IsZero() {
		s += "\nExpires at " + t.st.ExpiresAt.UTC().Format(time.RFC3339)
	}
	for _, p := range t.st.Problems {
		s += fmt.Sprintf("\nNeeds attention: %s: %s", p.Step, p.Error)
	}
	workflow.SetCurrentDetails(ctx, s)
}

func (t *tempAccess) validateInput() error {
	in := t.in
	switch {
	case !hr.ValidEmployeeID(in.EmployeeID):
		return fmt.Errorf("employee ID must be E followed by 6 digits, got %q", clipID(in.EmployeeID))
	case !safeIDPart(in.Application) || !safeIDPart(in.Entitlement):
		return fmt.Errorf("entitlement %q/%q: each part must be 1-128 letters, digits, '.', '_' or '-'", clipID(in.Application), clipID(in.Entitlement))
	case in.Duration < 0:
		return fmt.Errorf("duration %s is negative", in.Duration)
	case in.RequestedBy != "" && !hr.ValidEmployeeID(in.RequestedBy):
		return fmt.Errorf("requested by %q: not an employee ID", clipID(in.RequestedBy))
	case len(in.Justification) > MaxCommentLen:
		return fmt.Errorf("the justification has %d bytes; at most %d are kept", len(in.Justification), MaxCommentLen)
	}
	return nil
}

func (t *tempAccess) run(ctx workflow.Context) (TemporaryAccessResult, error) {
	if t.in.Continued == nil {
		if err := t.validateInput(); err != nil {
			t.st.Failure = err.Error()
			t.setState(ctx, StateFailed)
			return TemporaryAccessResult{}, temporal.NewNonRetryableApplicationError("invalid temporary access request: "+err.Error(), string(connectors.KindInvalid), nil)
		}
	}
	// The starter sets these at start; a run started by other means (or
	// continued) is found by the same filters.
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrEmployeeID.ValueSet(t.in.EmployeeID), AttrLifecycleEvent.ValueSet(EventTemporaryAccess))
	if t.in.Continued == nil {
		if done, res, err := t.obtain(ctx); done {
			return res, err
		}
	} else {
		_ = workflow.UpsertTypedSearchAttributes(ctx, AttrApplicationsTouched.ValueSet([]string{t.st.Application}))
		t.setState(ctx, t.st.State)
	}
	return t.hold(ctx)
}

// obtain plans, waits for approval and grants. done is true when the run
// ends here (refused, rejected, withdrawn, failed or cancelled).
func (t *tempAccess) obtain(ctx workflow.Context) (done bool, res TemporaryAccessResult, err error) {
	var plan activities.PlanRequestResult
	if err := workflow.ExecuteActivity(provisionOptions(ctx, "Plan the request from policy"), acts.PlanRequest,
		activities.PlanRequestInput{EmployeeID: t.in.EmployeeID, Application: t.in.Application, Entitlement: t.in.Entitlement, Duration: t.in.Duration},
	).Get(ctx, &plan); err != nil {
		t.st.Failure = "refused: " + errorMessage(err)
		t.setState(ctx, StateFailed)
		return true, TemporaryAccessResult{}, temporal.NewNonRetryableApplicationError(
			"temporary access "+t.ref()+" for "+t.in.EmployeeID+" "+t.st.Failure, "TemporaryAccessRefused", nil)
	}
	t.st.PolicyVersion, t.st.Username, t.st.Duration, t.st.Capped = plan.PolicyVersion, plan.Username, plan.Duration, plan.Capped
	t.st.MaxDuration, t.st.RemindBefore, t.st.ExtensionNeedsApproval = plan.MaxDuration, plan.RemindBefore, plan.ExtensionNeedsApproval
	t.accountExists = plan.AccountExists

	if len(plan.Steps) == 0 {
		t.setState(ctx, StateProvisioning)
		if err := t.grant(ctx, plan.Account, nil); err != nil {
			if err := t.undo(ctx, err); err != nil {
				return true, TemporaryAccessResult{}, err
			}
			return true, TemporaryAccessResult{t.snapshot()}, nil
		}
	} else {
		t.setState(ctx, StateWaitingApproval)
		t.book.plan(ctx, []activities.ApprovalItem{{Application: t.in.Application, Entitlement: t.in.Entitlement, Steps: plan.Steps}})
		t.book.start(ctx, func(gctx, _ workflow.Context, r *ApprovalRequest) error {
			t.setState(gctx, StateProvisioning)
			return t.grant(gctx, plan.Account, r)
		})
		err := workflow.Await(ctx, func() bool { return t.book.running == 0 || t.revokeReq != nil })
		if err != nil || t.revokeReq != nil {
			if err := t.undo(ctx, errOr(err, errWithdrawn)); err != nil {
				return true, TemporaryAccessResult{}, err
			}
			return true, TemporaryAccessResult{t.snapshot()}, nil
		}
		r := t.book.reqs[0]
		switch r.State {
		case RequestGranted:
		case RequestFailed:
			return true, TemporaryAccessResult{}, t.undo(ctx, t.book.err)
		default:
			t.archive()
			t.st.EndedAt, t.st.EndReason = workflow.Now(ctx), r.Reason
			t.setState(ctx, StateRejected)
			return true, TemporaryAccessResult{t.snapshot()}, nil
		}
		t.archive()
	}
	now := workflow.Now(ctx)
	t.st.GrantedAt = now
	t.setExpiry(now.Add(t.st.Duration))
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrApplicationsTouched.ValueSet([]string{t.st.Application}))
	t.setState(ctx, StateActive)
	workflow.GetLogger(ctx).Info("Temporary access granted", "expiresAt", t.st.ExpiresAt)
	return false, TemporaryAccessResult{}, nil
}

// errWithdrawn ends a request revoked before it was granted.
var errWithdrawn = errors.New("withdrawn")

func errOr(err, alt error) error {
	if err != nil {
		return err
	}
	return alt
}

func (t *tempAccess) ref() string { return t.in.Application + "/" + t.in.Entitlement }

func (t *tempAccess) setExpiry(at time.Time) {
	t.st.ExpiresAt = at
	t.st.RemindAt = at.Add(-t.st.RemindBefore)
	t.rev++
}

// audit is the ledger justification of the run's changes, with note.
func (t *tempAccess) audit(note string) activities.Audit {
	return withNote(audit(t.st.EmployeeID, ledger.EventTemporary, t.st.PolicyVersion), note)
}

// grantNote is the ledger note of the grant: who asked, if not the person,
// and their justification.
func (t *tempAccess) grantNote() string {
	note := t.st.Justification
	if t.st.RequestedBy != "" && t.st.RequestedBy != t.st.EmployeeID {
		note = ledgerNote("requested by "+t.st.RequestedBy, note)
	}
	return note
}

// grant ensures the account (only when the person has none in the
// application) and grants, undo steps first as in onboarding. approved is
// the approval that allowed it, nil when the policy asks for none.
func (t *tempAccess) grant(ctx workflow.Context, account connectors.Account, approved *ApprovalRequest) error {
	app, ent := t.in.Application, t.in.Entitlement
	au := withApproval(t.audit(t.grantNote()), approved)
	if !t.accountExists {
		t.saga.add("delete account in "+app, func(c workflow.Context, why string) error {
			acct := activities.AccountInput{App: app, Username: t.st.Username, Audit: undoAudit(au, why)}
			return workflow.ExecuteActivity(undoOptions(c, "Undo: delete account in "+app), acts.DeleteAccount, acct).Get(c, nil)
		})
		var ensured connectors.EnsureAccountResponse
		if err := workflow.ExecuteActivity(provisionOptions(ctx, "Create account in "+app), acts.EnsureAccount,
			activities.EnsureAccountInput{App: app, Account: account, Audit: au}).Get(ctx, &ensured); err != nil {
			return &stepError{app: app, step: "create account", err: err}
		}
		t.st.AccountCreated = ensured.Created
	}
	in := activities.EntitlementInput{App: app, Username: t.st.Username, Entitlement: ent, Audit: au}
	t.saga.add("revoke "+ent+" in "+app, func(c workflow.Context, why string) error {
		undo := in
		undo.Audit = undoAudit(au, why)
		return workflow.ExecuteActivity(undoOptions(c, "Undo: revoke "+ent+" in "+app), acts.RevokeEntitlement, undo).Get(c, nil)
	})
	if err := workflow.ExecuteActivity(provisionOptions(ctx, "Grant "+ent+" in "+app), acts.GrantEntitlement, in).Get(ctx, nil); err != nil {
		return &stepError{app: app, step: "grant " + ent, err: err}
	}
	return nil
}

// undo ends a run that did not get to hold the grant: approvals stop (a
// grant in flight finishes first), then whatever was done is undone.
func (t *tempAccess) undo(ctx workflow.Context, cause error) error {
	cancelled := ctx.Err() != nil || temporal.IsCanceledError(cause)
	why := "the request failed"
	switch {
	case cancelled:
		why = "the request was cancelled"
	case errors.Is(cause, errWithdrawn):
		why = "the request was withdrawn by " + t.revokeReq.RequestedBy
	}
	if t.book.planned {
		t.book.stop(ctx, why)
		t.archive()
	}
	if len(t.saga.steps) > 0 {
		t.setState(ctx, StateCompensating)
	}
	note := why
	if !cancelled && !errors.Is(cause, errWithdrawn) {
		note = undoReason(why, cause)
	}
	undoErr := errors.Join(compensate(ctx, []*saga{&t.saga}, note)...)
	t.st.AccountCreated = false
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	t.st.EndedAt = workflow.Now(dctx)
	switch {
	case cancelled:
		t.st.Failure = "cancelled before the access was held; nothing is left granted"
		t.setState(dctx, StateCancelled)
		return temporal.NewCanceledError(t.st.Failure)
	case errors.Is(cause, errWithdrawn):
		t.st.EndedBy, t.st.EndReason = t.revokeReq.RequestedBy, t.revokeReq.Reason
		t.setState(dctx, StateRevoked)
		return nil
	}
	if undoErr != nil {
		t.st.Failure = fmt.Sprintf("%s; undoing it also failed: %s", errorMessage(cause), errorMessage(undoErr))
		_ = workflow.UpsertTypedSearchAttributes(dctx, AttrNeedsAttention.ValueSet(true))
	} else {
		t.st.Failure = errorMessage(cause) + "; nothing is left granted"
	}
	t.setState(dctx, StateFailed)
	return temporal.NewNonRetryableApplicationError("temporary access "+t.ref()+" for "+t.in.EmployeeID+" failed: "+t.st.Failure, "TemporaryAccessFailed", nil)
}

// hold keeps the grant until it expires or is revoked, reminding the
// holder on the way, and continues as new when the history grows.
func (t *tempAccess) hold(ctx workflow.Context) (TemporaryAccessResult, error) {
	for {
		if t.revokeReq != nil {
			return t.end(ctx, StateRevoked, t.revokeReq.RequestedBy, t.revokeReq.Reason)
		}
		now := workflow.Now(ctx)
		if !now.Before(t.st.ExpiresAt) {
			return t.end(ctx, StateExpired, "", "expired")
		}
		if t.reminderDue() && !now.Before(t.st.RemindAt) {
			t.remind(ctx)
			continue
		}
		if t.canContinueAsNew(ctx) {
			return TemporaryAccessResult{}, t.continueAsNew(ctx)
		}
		next, summary := t.st.ExpiresAt, "Expire at "+t.st.ExpiresAt.UTC().Format(time.RFC3339)
		if t.reminderDue() && t.st.RemindAt.Before(next) {
			next, summary = t.st.RemindAt, "Remind at "+t.st.RemindAt.UTC().Format(time.RFC3339)
		}
		rev := t.rev
		if _, err := awaitTimeout(ctx, next.Sub(now), summary, func() bool {
			return t.rev != rev || t.revokeReq != nil || t.canContinueAsNew(ctx)
		}); err != nil {
			return t.end(ctx, StateCancelled, "", "the run was cancelled")
		}
	}
}

// reminderDue is true while the current expiry has not been reminded of.
func (t *tempAccess) reminderDue() bool {
	return t.st.RemindBefore > 0 && t.st.RemindedAt.Before(t.st.RemindAt)
}

// remind tells the holder the grant ends soon. A reminder that cannot be
// delivered is logged and skipped: it must not keep the grant alive.
func (t *tempAccess) remind(ctx workflow.Context) {
	var r activities.RemindResult
	err := workflow.ExecuteActivity(provisionOptions(ctx, "Remind "+t.st.EmployeeID+" of the expiry"), acts.RemindTemporaryAccess,
		activities.RemindInput{EmployeeID: t.st.EmployeeID, Application: t.st.Application, Entitlement: t.st.Entitlement, ExpiresAt: t.st.ExpiresAt},
	).Get(ctx, &r)
	t.st.RemindedAt = workflow.Now(ctx)
	if err != nil {
		t.st.Reminder = "not delivered: " + errorMessage(err)
		workflow.GetLogger(ctx).Warn("Reminder failed", "error", err)
		return
	}
	t.st.Reminder = r.Message + " (" + r.Channel + ")"
	t.setState(ctx, StateReminderSent)
}

// canContinueAsNew is true when the history should start afresh and
// nothing is in flight that a new run could not take over.
func (t *tempAccess) canContinueAsNew(ctx workflow.Context) bool {
	if t.extending || t.revokeReq != nil || t.book.running > 0 || !workflow.AllHandlersFinished(ctx) {
		return false
	}
	return t.extensions >= maxExtensionsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

func (t *tempAccess) continueAsNew(ctx workflow.Context) error {
	st := t.snapshot()
	st.Approvals = lastN(st.Approvals, keptRecords)
	st.Extensions = lastN(st.Extensions, keptRecords)
	in := t.in
	in.Continued = &st
	workflow.GetLogger(ctx).Info("Continuing as new", "extensions", t.extensions)
	return workflow.NewContinueAsNewError(ctx, TemporaryAccess, in)
}

func lastN[T any](s []T, n int) []T {
	if len(s) > n {
		return slices.Clone(s[len(s)-n:])
	}
	return s
}

// end revokes the grant, on a context the run's cancellation does not
// reach, and deletes the account if this grant created it.
func (t *tempAccess) end(ctx workflow.Context, state, by, reason string) (TemporaryAccessResult, error) {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	if t.book.planned && t.book.open() > 0 {
		t.book.stop(dctx, "the grant ended")
	}
	t.closeExtension()
	t.setState(dctx, StateRevoking)
	app, ent := t.st.Application, t.st.Entitlement
	note := reason
	if by != "" {
		note = ledgerNote("revoked by "+by, reason)
	}
	au := t.audit(note)
	in := activities.EntitlementInput{App: app, Username: t.st.Username, Entitlement: ent, Audit: au}
	in.Audit.RequestedAt = workflow.Now(dctx)
	revokeErr := t.persist(dctx, "revoke "+ent+" in "+app, func(c workflow.Context) error {
		in.Audit.Retry = retried(c)
		return workflow.ExecuteActivity(deprovisionOptions(c, "Revoke "+ent+" in "+app), acts.RevokeEntitlement, in).Get(c, nil)
	})
	var deleteErr error
	if revokeErr == nil && t.st.AccountCreated {
		acct := activities.AccountInput{App: app, Username: t.st.Username, Audit: au}
		acct.Audit.RequestedAt = workflow.Now(dctx)
		deleteErr = t.persist(dctx, "delete account in "+app, func(c workflow.Context) error {
			acct.Audit.Retry = retried(c)
			return workflow.ExecuteActivity(deprovisionOptions(c, "Delete the account created for this grant in "+app), acts.DeleteAccount, acct).Get(c, nil)
		})
	}
	t.st.EndedAt, t.st.EndedBy, t.st.EndReason = workflow.Now(dctx), by, reason
	if err := errors.Join(revokeErr, deleteErr); err != nil {
		t.st.Failure = errorMessage(err)
		t.setState(dctx, StateFailed)
		return TemporaryAccessResult{}, temporal.NewNonRetryableApplicationError(
			"temporary access "+t.ref()+" for "+t.st.EmployeeID+" could not be revoked: "+t.st.Failure, "TemporaryAccessFailed", nil)
	}
	t.setState(dctx, state)
	workflow.GetLogger(dctx).Info("Temporary access ended", "state", state)
	if state == StateCancelled {
		t.st.Failure = "cancelled; the access was revoked"
		return TemporaryAccessResult{}, temporal.NewCanceledError(t.st.Failure)
	}
	return TemporaryAccessResult{t.snapshot()}, nil
}

// persist runs a revocation step until it succeeds, like the leaver's:
// quick activity retries, then durable growing pauses while the run
// carries NeedsAttention. Only input that can never work stops it.
func (t *tempAccess) persist(ctx workflow.Context, step string, try func(workflow.Context) error) error {
	delay, start := firstRetryDelay, workflow.Now(ctx)
	for tries := 0; ; tries++ {
		err := try(withRetried(ctx, tries > 0))
		if err == nil || isKind(err, connectors.KindInvalid) {
			t.st.Problems = slices.DeleteFunc(t.st.Problems, func(p Problem) bool { return p.Step == step })
			t.flagAttention(ctx)
			return err
		}
		if i := slices.IndexFunc(t.st.Problems, func(p Problem) bool { return p.Step == step }); i >= 0 {
			t.st.Problems[i].Error = message(err)
		} else {
			t.st.Problems = append(t.st.Problems, Problem{Application: t.st.Application, Step: step, Error: message(err), Since: workflow.Now(ctx)})
		}
		t.flagAttention(ctx)
		workflow.GetLogger(ctx).Warn("Revocation step failed; retrying", "step", step, "retryIn", delay, "error", err)
		if err := workflow.NewTimerWithOptions(ctx, delay, workflow.TimerOptions{Summary: "Retry " + step}).Get(ctx, nil); err != nil {
			return err
		}
		delay = nextRetryDelay(delay, workflow.Now(ctx).Sub(start))
	}
}

func (t *tempAccess) flagAttention(ctx workflow.Context) {
	t.details(ctx)
	want := len(t.st.Problems) > 0
	if want == t.attention {
		return
	}
	t.attention = want
	if err := workflow.UpsertTypedSearchAttributes(ctx, AttrNeedsAttention.ValueSet(want)); err != nil {
		workflow.GetLogger(ctx).Warn("Cannot upsert NeedsAttention", "error", err)
	}
}

// held reports whether the grant is in force and not ending.
func (t *tempAccess) held() bool {
	return (t.st.State == StateActive || t.st.State == StateReminderSent) && t.revokeReq == nil
}

func (t *tempAccess) validateExtend(ctx workflow.Context, in ExtendInput) error {
	switch {
	case in.Duration <= 0:
		return fmt.Errorf("the extension must be positive, got %s", in.Duration)
	case !hr.ValidEmployeeID(in.RequestedBy):
		return fmt.Errorf("requested by %q: not an employee ID (E followed by 6 digits)", clipID(in.RequestedBy))
	case len(in.Justification) > MaxCommentLen:
		return fmt.Errorf("the justification has %d bytes; at most %d are kept", len(in.Justification), MaxCommentLen)
	case !t.held():
		return fmt.Errorf("%s of %s is not held now (state %s): nothing to extend", t.ref(), t.in.EmployeeID, t.st.State)
	case t.extending:
		return fmt.Errorf("an extension of %s for %s already waits for approval", t.ref(), t.in.EmployeeID)
	}
	return t.checkExtension(ctx, in.Duration, t.st.MaxDuration)
}

// checkExtension refuses an expiry more than max ahead of now.
func (t *tempAccess) checkExtension(ctx workflow.Context, d, maxDur time.Duration) error {
	now := workflow.Now(ctx)
	to := t.st.ExpiresAt.Add(d)
	if to.Sub(now) > maxDur {
		allowed := max(maxDur-t.st.ExpiresAt.Sub(now), 0)
		return fmt.Errorf("extending %s by %s would end it at %s, more than the policy's %s from now; at most %s can be added now",
			t.ref(), formatWait(d), to.UTC().Format(time.RFC3339), formatWait(maxDur), formatWait(allowed.Truncate(time.Minute)))
	}
	return nil
}

func (t *tempAccess) extend(ctx workflow.Context, in ExtendInput) (ExtendResult, error) {
	// Validators are skipped on replay; the state check is deterministic.
	if err := t.validateExtend(ctx, in); err != nil {
		return ExtendResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "ExtensionRefused", nil)
	}
	t.extending = true
	ext := Extension{RequestedBy: in.RequestedBy, RequestedAt: workflow.Now(ctx), Duration: in.Duration, Justification: in.Justification}
	// Policy may have changed since the grant (approvers, max_duration):
	// the extension is judged by the policy in force now.
	var plan activities.PlanRequestResult
	err := workflow.ExecuteActivity(provisionOptions(ctx, "Plan the extension from policy"), acts.PlanRequest,
		activities.PlanRequestInput{EmployeeID: t.in.EmployeeID, Application: t.in.Application, Entitlement: t.in.Entitlement, Duration: in.Duration},
	).Get(ctx, &plan)
	if err == nil {
		err = t.checkExtension(ctx, in.Duration, plan.MaxDuration)
	}
	if err == nil && !t.held() {
		err = errors.New("the grant ended while the extension was planned")
	}
	if err != nil {
		t.extending = false
		ext.State, ext.Reason = ExtensionRejected, errorMessage(err)
		t.st.Extensions = append(t.st.Extensions, ext)
		return ExtendResult{Extension: ext}, temporal.NewNonRetryableApplicationError("extension refused: "+ext.Reason, "ExtensionRefused", nil)
	}
	t.st.MaxDuration = plan.MaxDuration
	if !plan.ExtensionNeedsApproval || len(plan.Steps) == 0 {
		t.apply(ctx, &ext)
		t.st.Extensions = append(t.st.Extensions, ext)
		t.extending = false
		return ExtendResult{Extension: ext}, nil
	}
	ext.State = ExtensionWaiting
	t.st.Extensions = append(t.st.Extensions, ext)
	idx := len(t.st.Extensions) - 1
	t.book.plan(ctx, []activities.ApprovalItem{{Application: t.in.Application, Entitlement: t.in.Entitlement, Steps: plan.Steps}})
	// Approval is the whole of this round: "granted" means applied.
	t.book.start(ctx, func(gctx, _ workflow.Context, _ *ApprovalRequest) error {
		t.apply(gctx, &t.st.Extensions[idx])
		return nil
	})
	reqID := ""
	if len(t.book.reqs) > 0 {
		reqID = t.book.reqs[0].ID
	}
	workflow.Go(ctx, func(gctx workflow.Context) {
		_ = workflow.Await(gctx, func() bool { return t.book.running == 0 })
		t.closeExtension()
	})
	return ExtendResult{Extension: ext, RequestID: reqID}, nil
}

// closeExtension records how the extension's approval round ended and
// archives it. It runs once the round's goroutine returned, or right after
// the run stopped the round; the second call finds nothing to do.
func (t *tempAccess) closeExtension() {
	if !t.extending {
		return
	}
	t.extending = false
	t.rev++
	e := &t.st.Extensions[len(t.st.Extensions)-1]
	if !t.book.planned || len(t.book.reqs) == 0 {
		return
	}
	r := t.book.reqs[0]
	if e.State == ExtensionWaiting {
		e.State, e.Reason = ExtensionRejected, r.Reason
		if r.State == RequestCancelled {
			e.State = ExtensionCancelled
		}
	}
	t.archive()
}

// apply moves the expiry by the extension, never further than the policy
// maximum ahead of now (an approval may have taken a while).
func (t *tempAccess) apply(ctx workflow.Context, ext *Extension) {
	now := workflow.Now(ctx)
	to := t.st.ExpiresAt.Add(ext.Duration)
	if limit := now.Add(t.st.MaxDuration); to.After(limit) {
		to = limit
		ext.Reason = "shortened to the policy's " + formatWait(t.st.MaxDuration) + " from now"
	}
	ext.State, ext.ExpiresBefore, ext.ExpiresAfter = ExtensionApplied, t.st.ExpiresAt, to
	t.setExpiry(to)
	t.extensions++
	if t.st.State == StateReminderSent && t.reminderDue() {
		t.setState(ctx, StateActive)
	} else {
		t.details(ctx)
	}
	workflow.GetLogger(ctx).Info("Temporary access extended", "expiresAt", to, "by", ext.RequestedBy)
}

func (t *tempAccess) validateRevoke(in RevokeInput) error {
	switch {
	case !hr.ValidEmployeeID(in.RequestedBy):
		return fmt.Errorf("requested by %q: not an employee ID (E followed by 6 digits)", clipID(in.RequestedBy))
	case len(in.Reason) > MaxCommentLen:
		return fmt.Errorf("the reason has %d bytes; at most %d are kept", len(in.Reason), MaxCommentLen)
	case t.revokeReq != nil:
		return fmt.Errorf("%s of %s is already being revoked (asked by %s)", t.ref(), t.in.EmployeeID, t.revokeReq.RequestedBy)
	}
	switch t.st.State {
	case StatePlanning, StateWaitingApproval, StateProvisioning, StateActive, StateReminderSent:
		return nil
	}
	return fmt.Errorf("%s of %s is %s: nothing to revoke", t.ref(), t.in.EmployeeID, t.st.State)
}

func (t *tempAccess) revoke(ctx workflow.Context, in RevokeInput) (RevokeResult, error) {
	if err := t.validateRevoke(in); err != nil {
		return RevokeResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "RevokeRefused", nil)
	}
	t.revokeReq = &in
	workflow.GetLogger(ctx).Info("Early revocation requested", "by", in.RequestedBy)
	return RevokeResult{State: t.st.State}, nil
}
