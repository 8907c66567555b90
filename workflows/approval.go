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
	"github.com/provisio-dev/provisio/internal/hr"
)

// Names of the approval messages every workflow with approval requests
// answers.
const (
	// UpdateDecide approves or rejects one request: DecideInput in,
	// DecideResult out. Its validator refuses, without a trace in the
	// history, an unknown request, one already decided, and anyone who is
	// not (yet) its approver.
	UpdateDecide = "decide"
	// QueryApprovals answers with ApprovalsState.
	QueryApprovals = "approvals"
)

// StateWaitingApproval is the AttrLifecycleState of a run whose own work is
// done and that still waits for approval decisions.
const StateWaitingApproval = "waiting-approval"

// Request states, the values of ApprovalRequest.State.
const (
	// RequestWaiting waits for the approver(s) of the current step.
	RequestWaiting = "waiting"
	// RequestApproved passed every step; the grant is under way.
	RequestApproved = "approved"
	// RequestGranted passed every step and the entitlement is held.
	RequestGranted = "granted"
	// RequestRejected was rejected by an approver, expired, or had no
	// possible approver; Reason says which.
	RequestRejected = "rejected"
	// RequestFailed was approved but could not be granted; the run then
	// undid everything.
	RequestFailed = "failed"
	// RequestCancelled ended with the run (cancelled, or failed elsewhere)
	// before its access could be kept.
	RequestCancelled = "cancelled"
)

// Step states, the values of ApprovalStepState.State.
const (
	StepPending  = "pending"
	StepWaiting  = "waiting"
	StepApproved = "approved"
	StepRejected = "rejected"
	StepExpired  = "expired"
)

// MaxCommentLen bounds a decision's comment, which is kept in the history.
const MaxCommentLen = 1000

// ApprovalRequestID is the stable, printable ID of the request for one
// entitlement in one run: "<workflowID>/<application>/<entitlement>", e.g.
// "onboarding-E100091/scim/finance-admins". The workflow ID is the one the
// run's ID function gives (OnboardingID), so the CLI finds the run from the
// request ID alone, without a lookup table. Policy names never contain a
// slash and those workflow IDs never do, so the ID parses back; it holds an
// employee ID only, no personal data.
func ApprovalRequestID(workflowID, application, entitlement string) string {
	return workflowID + "/" + application + "/" + entitlement
}

// ParseApprovalRequestID splits a request ID into the workflow that holds
// the request and the entitlement it asks for.
func ParseApprovalRequestID(id string) (workflowID, application, entitlement string, err error) {
	parts := strings.Split(id, "/")
	if len(parts) != 3 {
		return "", "", "", fmt.Errorf("approval request ID %q: want WORKFLOW/APPLICATION/ENTITLEMENT, e.g. onboarding-E100091/scim/finance-admins", clipID(id))
	}
	for _, p := range parts {
		if !safeIDPart(p) {
			return "", "", "", fmt.Errorf("approval request ID %q: each part must be 1-128 letters, digits, '.', '_' or '-'", clipID(id))
		}
	}
	return parts[0], parts[1], parts[2], nil
}

func safeIDPart(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

func clipID(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// DecideInput is one approver's decision on one request.
type DecideInput struct {
	RequestID string `json:"requestId"`
	// ApproverID is the employee ID of who decides.
	ApproverID string `json:"approverId"`
	Approve    bool   `json:"approve"`
	Comment    string `json:"comment,omitempty"`
}

// DecideResult is the request right after the decision was applied.
type DecideResult struct {
	Request ApprovalRequest `json:"request"`
}

// ApprovalsState answers QueryApprovals.
type ApprovalsState struct {
	// Planned is false until the run knows its access (and so its
	// requests).
	Planned bool `json:"planned"`
	// Requests are in plan order (application, then entitlement).
	Requests []ApprovalRequest `json:"requests"`
	// WaitingApprovers is the value of the WaitingApprovers search
	// attribute: every employee ID that may decide a request now, sorted.
	WaitingApprovers []string `json:"waitingApprovers,omitempty"`
}

// ApprovalRequest is one entitlement waiting for (or past) its approvals.
type ApprovalRequest struct {
	ID          string `json:"id"`
	EmployeeID  string `json:"employeeId"`
	Application string `json:"application"`
	Entitlement string `json:"entitlement"`
	State       string `json:"state"`
	// Step is the index of the step waiting, or of the one that ended the
	// request.
	Step  int                 `json:"step"`
	Steps []ApprovalStepState `json:"steps"`
	// Reason says why a request ended other than granted: who rejected it
	// and their comment, "expired: ...", or why nobody could approve.
	Reason      string    `json:"reason,omitempty"`
	RequestedAt time.Time `json:"requestedAt"`
	ClosedAt    time.Time `json:"closedAt,omitzero"`

	// rev changes on every change of the request, so its goroutine wakes
	// up and re-arms its timers.
	rev int
}

// ApprovalStepState is one approval step and what happened to it.
type ApprovalStepState struct {
	activities.ApprovalStep
	State string `json:"state"`
	// EscalationApproverID may decide as well once the step escalated.
	EscalationApproverID string    `json:"escalationApproverId,omitempty"`
	StartedAt            time.Time `json:"startedAt,omitzero"`
	// EscalatesAt is zero when the step does not escalate.
	EscalatesAt time.Time `json:"escalatesAt,omitzero"`
	ExpiresAt   time.Time `json:"expiresAt,omitzero"`
	// EscalatedAt is when escalation was tried, whether or not someone
	// was found to escalate to (Note says if not).
	EscalatedAt time.Time `json:"escalatedAt,omitzero"`
	DecidedAt   time.Time `json:"decidedAt,omitzero"`
	// DecidedBy is empty for an expired or unresolved step.
	DecidedBy string `json:"decidedBy,omitempty"`
	Comment   string `json:"comment,omitempty"`
	// Note records what the workflow decided on its own, e.g. that nobody
	// is above the approver to escalate to.
	Note string `json:"note,omitempty"`
}

// Current is the step waiting or the one that ended the request.
func (r ApprovalRequest) Current() ApprovalStepState { return r.Steps[r.Step] }

// Final reports whether the request can no longer be decided.
func (r ApprovalRequest) Final() bool { return r.State != RequestWaiting }

// WaitingFor lists who may decide the request now (the step's approver,
// and the escalation approver once escalated); nil when not waiting.
func (r ApprovalRequest) WaitingFor() []string {
	if r.State != RequestWaiting {
		return nil
	}
	s := r.Steps[r.Step]
	if s.EscalationApproverID != "" {
		return []string{s.ApproverID, s.EscalationApproverID}
	}
	return []string{s.ApproverID}
}

func (r ApprovalRequest) clone() ApprovalRequest {
	r.Steps = slices.Clone(r.Steps)
	return r
}

// grantFunc grants an approved request's entitlement; waitCtx ends when the
// run stops waiting (it is being undone), ctx only when it is cancelled.
type grantFunc func(ctx, waitCtx workflow.Context, r *ApprovalRequest) error

// approvalBook runs a workflow's approval requests: each waits for its
// steps in its own goroutine, in parallel with the rest of the run. The
// update handler changes request state directly; goroutines only arm the
// escalation and expiry timers and grant once approved.
type approvalBook struct {
	workflowID, employeeID string
	planned                bool
	// reqs never grows after planning, so pointers into it stay valid.
	reqs []ApprovalRequest
	// waiting is the last WaitingApprovers value upserted.
	waiting []string
	// running counts request goroutines that have not returned.
	running int
	// err is the first approved request whose grant failed for good.
	err error
	// stopping is set once the run undoes itself: no decision counts then.
	stopping    bool
	cancelWaits []workflow.CancelFunc
}

// register installs the query and the update. It must run before the
// workflow first blocks, so no decision arrives to a workflow without a
// handler.
func (b *approvalBook) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryApprovals, b.query); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateDecide, b.decide, workflow.UpdateHandlerOptions{
		Validator: b.validate,
	})
}

func (b *approvalBook) query() (ApprovalsState, error) {
	st := ApprovalsState{Planned: b.planned, Requests: make([]ApprovalRequest, len(b.reqs)), WaitingApprovers: b.waiting}
	for i := range b.reqs {
		st.Requests[i] = b.reqs[i].clone()
	}
	return st, nil
}

// plan creates one request per approval item and starts its first step.
func (b *approvalBook) plan(ctx workflow.Context, items []activities.ApprovalItem) {
	now := workflow.Now(ctx)
	b.reqs = make([]ApprovalRequest, len(items))
	for i, it := range items {
		r := ApprovalRequest{
			ID:         ApprovalRequestID(b.workflowID, it.Application, it.Entitlement),
			EmployeeID: b.employeeID, Application: it.Application, Entitlement: it.Entitlement,
			State: RequestWaiting, Steps: make([]ApprovalStepState, len(it.Steps)), RequestedAt: now,
		}
		for j, s := range it.Steps {
			r.Steps[j] = ApprovalStepState{ApprovalStep: s, State: StepPending}
		}
		b.reqs[i] = r
		if len(r.Steps) == 0 {
			// The planner only carries items with steps; an empty list would
			// mean granting without anyone's approval, so refuse it.
			b.reqs[i].State, b.reqs[i].Reason, b.reqs[i].ClosedAt = RequestRejected, "the plan lists no approval step", now
			continue
		}
		b.startStep(ctx, &b.reqs[i])
	}
	b.planned = true
	b.upsertWaiting(ctx)
}

// start runs every open request in its own goroutine. grant is called for
// each request once approved.
func (b *approvalBook) start(ctx workflow.Context, grant grantFunc) {
	for i := range b.reqs {
		r := &b.reqs[i]
		if r.Final() {
			continue
		}
		b.running++
		workflow.Go(ctx, func(gctx workflow.Context) {
			defer func() { b.running-- }()
			// A context belongs to its goroutine, so each request gets its
			// own cancellable wait context; stop cancels them all.
			wctx, cancel := workflow.WithCancel(gctx)
			defer cancel()
			b.cancelWaits = append(b.cancelWaits, cancel)
			b.run(gctx, wctx, r, grant)
		})
	}
}

// open counts requests still waiting for a decision or a grant.
func (b *approvalBook) open() int {
	n := 0
	for i := range b.reqs {
		if b.reqs[i].State == RequestWaiting || b.reqs[i].State == RequestApproved {
			n++
		}
	}
	return n
}

// startStep opens r's current step: its clocks start now. A step nobody can
// approve rejects the request at once.
func (b *approvalBook) startStep(ctx workflow.Context, r *ApprovalRequest) {
	s := &r.Steps[r.Step]
	now := workflow.Now(ctx)
	s.State, s.StartedAt = StepWaiting, now
	r.rev++
	switch {
	case s.Unresolved:
		s.State, s.DecidedAt = StepRejected, now
		b.close(r, RequestRejected, now, "nobody may approve: "+s.Fallback)
	case s.ExpireAfter <= 0:
		s.State, s.DecidedAt = StepRejected, now
		b.close(r, RequestRejected, now, "the policy gave this approval step no expiry")
	default:
		s.ExpiresAt = now.Add(s.ExpireAfter)
		if s.EscalateAfter > 0 && s.EscalateAfter < s.ExpireAfter {
			s.EscalatesAt = now.Add(s.EscalateAfter)
		}
	}
}

func (b *approvalBook) close(r *ApprovalRequest, state string, at time.Time, reason string) {
	r.State, r.ClosedAt, r.Reason = state, at, reason
	r.rev++
}

func (b *approvalBook) find(id string) *ApprovalRequest {
	for i := range b.reqs {
		if b.reqs[i].ID == id {
			return &b.reqs[i]
		}
	}
	return nil
}

// validate decides whether a decision may be taken. Returning an error
// rejects the update: the caller gets the message and the history keeps no
// trace of it.
func (b *approvalBook) validate(in DecideInput) error {
	switch {
	case in.RequestID == "":
		return errors.New("the request ID is required")
	case !hr.ValidEmployeeID(in.ApproverID):
		return fmt.Errorf("approver %q is not an employee ID (E followed by 6 digits)", clipID(in.ApproverID))
	case len(in.Comment) > MaxCommentLen:
		return fmt.Errorf("the comment has %d bytes; at most %d are kept", len(in.Comment), MaxCommentLen)
	case !b.planned:
		return fmt.Errorf("unknown approval request %q: this run has not planned its access yet", clipID(in.RequestID))
	}
	r := b.find(in.RequestID)
	if r == nil {
		ids := make([]string, len(b.reqs))
		for i := range b.reqs {
			ids[i] = b.reqs[i].ID
		}
		known := "it has none"
		if len(ids) > 0 {
			known = "its requests: " + strings.Join(ids, ", ")
		}
		return fmt.Errorf("unknown approval request %q in %s (%s)", clipID(in.RequestID), b.workflowID, known)
	}
	if b.stopping {
		return fmt.Errorf("approval request %s is closed: the run is being undone", r.ID)
	}
	if r.Final() {
		return fmt.Errorf("approval request %s is already decided: %s", r.ID, outcome(*r))
	}
	if in.ApproverID == b.employeeID {
		return fmt.Errorf("%s may not decide on their own access", in.ApproverID)
	}
	s := r.Steps[r.Step]
	if slices.Contains(r.WaitingFor(), in.ApproverID) {
		return nil
	}
	for j := r.Step + 1; j < len(r.Steps); j++ {
		if r.Steps[j].ApproverID == in.ApproverID {
			return fmt.Errorf("approval request %s is not waiting for %s yet: step %d of %d (%s) waits for %s first",
				r.ID, in.ApproverID, r.Step+1, len(r.Steps), s.Kind, strings.Join(r.WaitingFor(), " or "))
		}
	}
	msg := fmt.Sprintf("%s may not decide approval request %s: step %d of %d (%s) waits for %s",
		in.ApproverID, r.ID, r.Step+1, len(r.Steps), s.Kind, strings.Join(r.WaitingFor(), " or "))
	if !s.EscalatesAt.IsZero() && s.EscalatedAt.IsZero() {
		msg += fmt.Sprintf(" (their manager may decide as well from %s)", s.EscalatesAt.UTC().Format(time.RFC3339))
	}
	return errors.New(msg)
}

// outcome describes a final request for an error message.
func outcome(r ApprovalRequest) string {
	switch r.State {
	case RequestApproved:
		return "approved; the grant is under way"
	case RequestGranted:
		return "approved and granted"
	default:
		return r.State + ": " + r.Reason
	}
}

// decide applies a validated decision. It never blocks, so two decisions
// arriving together are applied one after the other, each validated against
// the state the previous one left.
func (b *approvalBook) decide(ctx workflow.Context, in DecideInput) (DecideResult, error) {
	// Validators are skipped on replay; this check is deterministic either
	// way and protects against a decision validated against stale state.
	if err := b.validate(in); err != nil {
		return DecideResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "DecisionRefused", nil)
	}
	r := b.find(in.RequestID)
	s := &r.Steps[r.Step]
	now := workflow.Now(ctx)
	s.DecidedAt, s.DecidedBy, s.Comment = now, in.ApproverID, in.Comment
	if in.ApproverID == s.EscalationApproverID {
		s.Note = joinNote(s.Note, "decided by the escalation approver")
	}
	if in.Approve {
		s.State = StepApproved
		if r.Step+1 < len(r.Steps) {
			r.Step++
			b.startStep(ctx, r)
		} else {
			r.State = RequestApproved
		}
	} else {
		s.State = StepRejected
		reason := "rejected by " + in.ApproverID
		if in.Comment != "" {
			reason += ": " + in.Comment
		}
		b.close(r, RequestRejected, now, reason)
	}
	r.rev++
	workflow.GetLogger(ctx).Info("Approval decision", "request", r.ID, "approver", in.ApproverID, "approve", in.Approve, "state", r.State)
	b.upsertWaiting(ctx)
	return DecideResult{Request: r.clone()}, nil
}

// run waits out r's steps: at each step's EscalatesAt it adds the
// approver's manager, at its ExpiresAt it rejects the request. Decisions
// arrive through decide and wake it up. Once approved, it grants.
func (b *approvalBook) run(ctx, wctx workflow.Context, r *ApprovalRequest, grant grantFunc) {
	for r.State == RequestWaiting {
		s := &r.Steps[r.Step]
		rev := r.rev
		changed := func() bool { return r.rev != rev }
		if !s.EscalatesAt.IsZero() && s.EscalatedAt.IsZero() {
			due, err := waitUntil(wctx, s.EscalatesAt, "Escalate "+r.ID, changed)
			if err != nil {
				return
			}
			if due {
				if err := b.escalate(wctx, r, s); err != nil {
					return
				}
			}
			continue
		}
		due, err := waitUntil(wctx, s.ExpiresAt, "Expire "+r.ID, changed)
		if err != nil {
			return
		}
		if due {
			now := workflow.Now(ctx)
			s.State, s.DecidedAt = StepExpired, now
			b.close(r, RequestRejected, now, fmt.Sprintf("expired: nobody decided step %d of %d (%s) within %s",
				r.Step+1, len(r.Steps), s.Kind, formatWait(s.ExpireAfter)))
			workflow.GetLogger(ctx).Info("Approval request expired", "request", r.ID)
			b.upsertWaiting(ctx)
		}
	}
	if r.State != RequestApproved {
		return
	}
	err := grant(ctx, wctx, r)
	switch {
	case err == nil:
		b.close(r, RequestGranted, workflow.Now(ctx), "")
	case b.stopping:
		// The run is being undone anyway; stop records the outcome.
	default:
		b.close(r, RequestFailed, workflow.Now(ctx), "approved, but granting failed: "+errorMessage(err))
		if b.err == nil {
			b.err = err
		}
	}
}

// waitUntil blocks until changed() or the deadline, and reports whether
// the deadline came first.
func waitUntil(ctx workflow.Context, at time.Time, summary string, changed func() bool) (bool, error) {
	d := at.Sub(workflow.Now(ctx))
	if d <= 0 {
		return !changed(), nil
	}
	ok, err := awaitTimeout(ctx, d, summary, changed)
	return !ok, err
}

// awaitTimeout is workflow.AwaitWithOptions that also cancels its timer when
// the condition wins, so a decided step leaves no timer behind to fire days
// later (this SDK version keeps it running by default).
func awaitTimeout(ctx workflow.Context, d time.Duration, summary string, cond func() bool) (bool, error) {
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	return workflow.AwaitWithOptions(tctx, workflow.AwaitOptions{Timeout: d, TimerOptions: workflow.TimerOptions{Summary: summary}}, cond)
}

// escalate lets the approver's manager decide as well. Nobody above the
// approver (or a manager who is the person themselves) leaves the original
// approver alone, and the step says why.
func (b *approvalBook) escalate(wctx workflow.Context, r *ApprovalRequest, s *ApprovalStepState) error {
	rev := r.rev
	var res activities.ManagerOfResult
	err := workflow.ExecuteActivity(provisionOptions(wctx, "Find who "+r.ID+" escalates to"), acts.ManagerOf,
		activities.ManagerOfInput{EmployeeID: s.ApproverID}).Get(wctx, &res)
	if wctx.Err() != nil {
		return wctx.Err()
	}
	s.EscalatedAt = workflow.Now(wctx)
	if r.rev != rev {
		// Decided while the manager was looked up: nothing to escalate.
		return nil
	}
	keep := "; only " + s.ApproverID + " can decide"
	switch {
	case err != nil:
		s.Note = joinNote(s.Note, "cannot escalate: "+errorMessage(err)+keep)
	case !res.Known:
		s.Note = joinNote(s.Note, "cannot escalate: "+s.ApproverID+" is not in the HR directory"+keep)
	case res.ManagerID == "":
		s.Note = joinNote(s.Note, "cannot escalate: nobody is above "+s.ApproverID+" in HR"+keep)
	case res.ManagerID == b.employeeID:
		s.Note = joinNote(s.Note, "cannot escalate: the approver's manager is the person themselves"+keep)
	default:
		s.EscalationApproverID = res.ManagerID
		s.Note = joinNote(s.Note, "escalated to "+res.ManagerID+", the manager of "+s.ApproverID)
		workflow.GetLogger(wctx).Info("Approval request escalated", "request", r.ID, "to", res.ManagerID)
	}
	r.rev++
	b.upsertWaiting(wctx)
	return nil
}

// stop ends every wait because the run undoes itself, waits for the
// request goroutines (a grant in flight finishes, so compensation sees it),
// and closes what is still open.
func (b *approvalBook) stop(ctx workflow.Context, why string) {
	b.stopping = true
	for _, cancel := range b.cancelWaits {
		cancel()
	}
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	_ = workflow.Await(dctx, func() bool { return b.running == 0 })
	now := workflow.Now(dctx)
	for i := range b.reqs {
		r := &b.reqs[i]
		switch r.State {
		case RequestWaiting, RequestApproved:
			if r.State == RequestWaiting {
				r.Steps[r.Step].Note = joinNote(r.Steps[r.Step].Note, "no decision before the run ended")
			}
			b.close(r, RequestCancelled, now, why+" before this access was granted")
		case RequestGranted:
			b.close(r, RequestCancelled, now, "granted, then removed: "+why)
		}
	}
	b.upsertWaiting(dctx)
}

// upsertWaiting publishes who may decide something now, so "what waits for
// me" is one visibility query (WaitingApprovers = 'E100008').
func (b *approvalBook) upsertWaiting(ctx workflow.Context) {
	ids := []string{}
	for i := range b.reqs {
		ids = append(ids, b.reqs[i].WaitingFor()...)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if slices.Equal(ids, b.waiting) {
		return
	}
	b.waiting = ids
	// An empty list (rather than unset) keeps the attribute visible in the
	// UI as "waiting for nobody". As for the state: the query still tells
	// the truth if this fails.
	if err := workflow.UpsertTypedSearchAttributes(ctx, AttrWaitingApprovers.ValueSet(ids)); err != nil {
		workflow.GetLogger(ctx).Warn("Cannot upsert waiting approvers", "error", err)
	}
}

// formatWait prints whole days as days ("7d"), like the policy file does.
func formatWait(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// errorMessage is an activity error's own message, without the SDK's
// wrapping.
func errorMessage(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Message()
	}
	return err.Error()
}
