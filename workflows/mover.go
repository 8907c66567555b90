package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
)

// moverTemporaryEvent is the AttrLifecycleEvent of a temporary-access run
// (see AttrLifecycleEvent): the mover keeps their grants until they expire.
const moverTemporaryEvent = EventTemporaryAccess

// Error types a mover ends with, besides the connector kinds.
const (
	// ErrMoverRefused: the move cannot apply (no onboarding completed, no
	// username, invalid record, separation of duties); nothing changed.
	ErrMoverRefused = "MoverRefused"
	// ErrLeaverWins: the person is being offboarded; a leaver wins over a
	// role change.
	ErrLeaverWins = "LeaverWins"
	// ErrMoverFailed: a step failed for good; what the move granted was
	// undone.
	ErrMoverFailed = "MoverFailed"
)

// MoverInput starts a role change: the person's HR record with the new
// attributes, and the key of the change (MoverChangeKey) their workflow ID
// is built from. Like the other inputs it holds no secret.
type MoverInput struct {
	Person    hr.Person `json:"person"`
	ChangeKey string    `json:"changeKey"`
}

// MoverResult is what a finished role change did.
type MoverResult struct {
	EmployeeID    string `json:"employeeId"`
	Username      string `json:"username"`
	PolicyVersion string `json:"policyVersion"`
	// Granted is the access the new role brought, approved access
	// included; Revoked is what it no longer justifies.
	Granted []activities.GrantRef `json:"granted,omitempty"`
	Revoked []activities.GrantRef `json:"revoked,omitempty"`
	// Kept are temporary grants the new role does not give, left to
	// their own expiry.
	Kept []activities.GrantRef `json:"kept,omitempty"`
	// Unmanaged are held entitlements the policy does not declare, left
	// alone.
	Unmanaged []activities.GrantRef `json:"unmanaged,omitempty"`
	// NotRevoked are revocations that could never succeed (bad input);
	// the run carries NeedsAttention.
	NotRevoked []string `json:"notRevoked,omitempty"`
	// CreatedAccounts are applications the person had no account in.
	CreatedAccounts []string          `json:"createdAccounts,omitempty"`
	Approvals       []ApprovalRequest `json:"approvals,omitempty"`
	// Deferred is planned access only a temporary-access request gives.
	Deferred []activities.DeferredAccess `json:"deferred,omitempty"`
}

// MoverState answers QueryState.
type MoverState struct {
	State    string `json:"state"`
	Username string `json:"username,omitempty"`
	// Detail says what the run waits for.
	Detail           string                `json:"detail,omitempty"`
	Granted          []activities.GrantRef `json:"granted,omitempty"`
	Revoked          []activities.GrantRef `json:"revoked,omitempty"`
	WaitingApprovers []string              `json:"waitingApprovers,omitempty"`
	Failure          string                `json:"failure,omitempty"`
}

// MoverChangeKey is a short stable hash of the attributes a role change is
// about (department, title, manager, location, employment type and the
// extra attributes): the same change sent twice gets the same key, and so
// the same MoverID. The CLI computes it; the workflow only carries it.
func MoverChangeKey(p hr.Person) string {
	// json.Marshal sorts map keys, so the attributes hash the same
	// whatever order they came in.
	data, _ := json.Marshal(struct {
		Department     string            `json:"department"`
		Title          string            `json:"title"`
		ManagerID      string            `json:"manager_id"`
		Location       string            `json:"location"`
		EmploymentType string            `json:"employment_type"`
		Attributes     map[string]string `json:"attributes"`
	}{p.Department, p.Title, p.ManagerID, p.Location, p.EmploymentType, p.Attributes})
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:6])
}

// Mover applies a role change. It first waits for the person's onboarding
// and any earlier role change to finish, so it applies against their
// result, and refuses a person being offboarded (a leaver wins). Then it
// plans again from the new attributes and diffs with what is held: new
// access is granted (accounts created where needed, approval-gated access
// once approved), and once the new birthright access is in place, access
// the new role no longer justifies is revoked. Temporary grants stay until
// their own expiry; entitlements the policy does not declare are left
// alone. Every account's attributes are brought up to date.
//
// A grant that fails for good, or a cancellation, undoes what this run
// granted and created, in reverse order on a disconnected context.
// Revocations are deprovisioning: they retry until done and are never
// undone.
//
// `starter move` starts it through the person's sequencer (PersonEvents),
// which runs one role change at a time in arrival order. The wait for
// earlier role changes here relies on visibility, which is eventually
// consistent; it remains for movers started some other way.
func Mover(ctx workflow.Context, in MoverInput) (MoverResult, error) {
	m := &mover{in: in, st: MoverState{State: StateWaitingTurn}}
	m.book = approvalBook{workflowID: MoverID(in.Person.EmployeeID, in.ChangeKey), employeeID: in.Person.EmployeeID}
	if err := workflow.SetQueryHandler(ctx, QueryState, m.state); err != nil {
		return MoverResult{}, err
	}
	if err := m.book.register(ctx); err != nil {
		return MoverResult{}, err
	}
	return m.run(ctx)
}

type mover struct {
	in       MoverInput
	st       MoverState
	username string
	// apps are the applications the run works in, in name order, then
	// those only an approval brought.
	apps []*appRun
	// held lists, in name order, the applications where the person had
	// an account; existing answers the same by name.
	held       []string
	existing   map[string]bool
	book       approvalBook
	revoked    []activities.GrantRef
	notRevoked []string
	// policyVersion, reasons and planned are the diff's, for the access
	// ledger.
	policyVersion string
	reasons       map[string][]string
	planned       []activities.GrantRef
}

func (m *mover) state() (MoverState, error) {
	st := m.st
	st.Granted = m.granted()
	st.Revoked = slices.Clone(m.revoked)
	st.WaitingApprovers = m.book.waiting
	return st, nil
}

func (m *mover) granted() []activities.GrantRef {
	var out []activities.GrantRef
	for _, a := range m.apps {
		for _, e := range a.res.Entitlements {
			out = append(out, activities.GrantRef{Application: a.res.Application, Entitlement: e})
		}
	}
	return out
}

func (m *mover) setState(ctx workflow.Context, state string) {
	m.st.State = state
	m.details(ctx)
	if err := workflow.UpsertTypedSearchAttributes(ctx, AttrLifecycleState.ValueSet(state)); err != nil {
		workflow.GetLogger(ctx).Warn("Cannot upsert state", "error", err)
	}
}

func (m *mover) setDetail(ctx workflow.Context, d string) {
	m.st.Detail = d
	m.details(ctx)
}

func (m *mover) details(ctx workflow.Context) {
	s := "State: " + m.st.State
	if m.st.Detail != "" {
		s += "\n" + m.st.Detail
	}
	workflow.SetCurrentDetails(ctx, s)
}

// refuse ends a run that changed nothing.
func (m *mover) refuse(ctx workflow.Context, kind, msg string) error {
	m.st.Failure = msg + "; nothing was changed"
	m.setState(ctx, StateFailed)
	return temporal.NewNonRetryableApplicationError("role change refused: "+m.st.Failure, kind, nil)
}

func (m *mover) run(ctx workflow.Context) (MoverResult, error) {
	p := m.in.Person
	switch err := p.Validate(); {
	case err != nil:
		return MoverResult{}, m.refuse(ctx, string(connectors.KindInvalid), "invalid HR record: "+err.Error())
	case !safeIDPart(m.in.ChangeKey):
		return MoverResult{}, m.refuse(ctx, string(connectors.KindInvalid), fmt.Sprintf("change key %q must be 1-128 letters, digits, '.', '_' or '-'", clipID(m.in.ChangeKey)))
	case p.Status != hr.StatusActive:
		return MoverResult{}, m.refuse(ctx, ErrMoverRefused, fmt.Sprintf("%s has status %q, not active", p.EmployeeID, p.Status))
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrEmployeeID.ValueSet(p.EmployeeID), AttrLifecycleEvent.ValueSet(EventMover))

	m.setState(ctx, StateWaitingTurn)
	if err := m.awaitTurn(ctx); err != nil {
		return MoverResult{}, err
	}
	if err := m.checkLeaver(ctx); err != nil {
		return MoverResult{}, m.refuse(ctx, ErrLeaverWins, err.Error())
	}
	m.setDetail(ctx, "")
	m.setState(ctx, StatePlanning)
	diff, err := m.plan(ctx)
	if err != nil {
		return MoverResult{}, err
	}

	m.setState(ctx, StateProvisioning)
	m.book.plan(ctx, diff.Approvals)
	m.book.start(ctx, m.grantApproved)
	if err := m.provision(ctx, diff); err != nil {
		return MoverResult{}, m.undo(ctx, err)
	}
	// A termination that arrived meanwhile wins: take back what this run
	// granted rather than leave it to race the leaver's sweep.
	if err := m.checkLeaver(ctx); err != nil {
		return MoverResult{}, m.undo(ctx, temporal.NewNonRetryableApplicationError(err.Error(), ErrLeaverWins, nil))
	}

	m.setState(ctx, StateRevoking)
	m.revokeAll(ctx, diff.Revoke)
	if ctx.Err() != nil {
		return MoverResult{}, m.undo(ctx, ctx.Err())
	}
	if m.book.open() > 0 {
		m.setState(ctx, StateWaitingApproval)
	}
	if err := workflow.Await(ctx, func() bool { return m.book.running == 0 || m.book.err != nil }); err != nil {
		return MoverResult{}, m.undo(ctx, err)
	}
	if m.book.err != nil {
		return MoverResult{}, m.undo(ctx, m.book.err)
	}
	m.setState(ctx, StateCompleted)
	appr, _ := m.book.query()
	res := MoverResult{
		EmployeeID: p.EmployeeID, Username: m.username, PolicyVersion: diff.PolicyVersion,
		Granted: m.granted(), Revoked: slices.Clone(m.revoked), Kept: diff.Expiring, Unmanaged: diff.Unmanaged,
		NotRevoked: m.notRevoked, Approvals: appr.Requests, Deferred: diff.Deferred,
	}
	for _, a := range m.apps {
		if a.res.Created {
			res.CreatedAccounts = append(res.CreatedAccounts, a.res.Application)
		}
	}
	return res, nil
}

// awaitTurn waits until the person's onboarding and every earlier role
// change have closed, so this change applies against their result. An
// onboarding that did not complete leaves nothing to change.
func (m *mover) awaitTurn(ctx workflow.Context) error {
	id := m.in.Person.EmployeeID
	onb, err := m.awaitClosed(ctx, OnboardingID(id), "the onboarding")
	if err != nil {
		return m.refuse(ctx, ErrMoverRefused, "cannot learn whether the onboarding finished: "+message(err))
	}
	if onb.Found && onb.Status != "completed" {
		return m.refuse(ctx, ErrMoverRefused, fmt.Sprintf("the onboarding of %s ended %s: there is no access to change", id, onb.Status))
	}
	info := workflow.GetInfo(ctx)
	var earlier activities.OpenRunsResult
	err = workflow.ExecuteActivity(provisionOptions(ctx, "Find earlier role changes"), acts.OpenRuns, activities.OpenRunsInput{
		Query:         runningQuery(id, EventMover),
		StartedBefore: info.WorkflowStartTime, Exclude: info.WorkflowExecution.ID,
	}).Get(ctx, &earlier)
	if err != nil {
		return m.refuse(ctx, ErrMoverRefused, "cannot list earlier role changes: "+message(err))
	}
	for _, r := range earlier.Runs {
		if _, err := m.awaitClosed(ctx, r.WorkflowID, "the earlier role change "+r.WorkflowID); err != nil {
			return m.refuse(ctx, ErrMoverRefused, "cannot learn whether "+r.WorkflowID+" finished: "+message(err))
		}
	}
	return nil
}

// awaitClosed waits, in AwaitWorkflowClosed polls, until the workflow's
// latest run is closed or known not to exist.
func (m *mover) awaitClosed(ctx workflow.Context, wfID, what string) (activities.AwaitWorkflowClosedResult, error) {
	for {
		var r activities.AwaitWorkflowClosedResult
		if err := workflow.ExecuteActivity(awaitOptions(ctx, "Wait for "+what+" to finish"), acts.AwaitWorkflowClosed,
			activities.AwaitWorkflowClosedInput{WorkflowID: wfID, MaxWait: awaitOnboardingPoll}).Get(ctx, &r); err != nil {
			return r, err
		}
		if r.Closed {
			return r, nil
		}
		m.setDetail(ctx, "waiting for "+what+" to finish first")
	}
}

// checkLeaver returns an error when the person's offboarding runs or ran.
// Only a retracted one (cancelled before it changed anything) lets a role
// change through.
func (m *mover) checkLeaver(ctx workflow.Context) error {
	id := OffboardingID(m.in.Person.EmployeeID)
	var r activities.WorkflowStatusResult
	if err := workflow.ExecuteActivity(provisionOptions(ctx, "Check for an offboarding"), acts.WorkflowStatus,
		activities.WorkflowStatusInput{WorkflowID: id, StateAttribute: AttrLifecycleState.GetName()}).Get(ctx, &r); err != nil {
		return fmt.Errorf("cannot learn whether %s is being offboarded: %s", m.in.Person.EmployeeID, message(err))
	}
	if !r.Found || (r.Status == "canceled" && r.State == StateRetracted) {
		return nil
	}
	return fmt.Errorf("%s is being offboarded (%s, %s %s): a leaver wins over a role change", m.in.Person.EmployeeID, id, r.Status, r.State)
}

// plan reads what the person holds and diffs it with the new plan.
func (m *mover) plan(ctx workflow.Context) (activities.DiffAccessResult, error) {
	p := m.in.Person
	var found activities.FindAccountsResult
	if err := workflow.ExecuteActivity(provisionOptions(ctx, "Find accounts"), acts.FindAccounts,
		// An application that is down is waited for (the activity's
		// retries), not taken for a refusal.
		activities.FindAccountsInput{EmployeeID: p.EmployeeID, RetryUnreadable: true}).Get(ctx, &found); err != nil {
		return activities.DiffAccessResult{}, m.refuse(ctx, ErrMoverRefused, "cannot read what the person holds: "+message(err))
	}
	if found.Username == "" {
		return activities.DiffAccessResult{}, m.refuse(ctx, ErrMoverRefused, "no username is reserved for "+p.EmployeeID+": hire them first")
	}
	m.username, m.st.Username = found.Username, found.Username
	m.existing = map[string]bool{}
	for _, f := range found.Applications {
		switch {
		case f.Error != "":
			return activities.DiffAccessResult{}, m.refuse(ctx, ErrMoverRefused, fmt.Sprintf("cannot read the account in %s: %s", f.Application, f.Error))
		case f.Exists && !f.Foreign:
			m.existing[f.Application] = true
			m.held = append(m.held, f.Application)
		}
	}
	var temps activities.TemporaryGrantsResult
	if err := workflow.ExecuteActivity(provisionOptions(ctx, "Find temporary grants"), acts.TemporaryGrants, activities.TemporaryGrantsInput{
		Query: runningQuery(p.EmployeeID, moverTemporaryEvent), StateQuery: QueryState,
	}).Get(ctx, &temps); err != nil {
		return activities.DiffAccessResult{}, m.refuse(ctx, ErrMoverRefused, "cannot list temporary grants: "+message(err))
	}
	var diff activities.DiffAccessResult
	if err := workflow.ExecuteActivity(provisionOptions(ctx, "Plan the new access and diff it with what is held"), acts.DiffAccess,
		activities.DiffAccessInput{Person: p, Accounts: found.Applications, Temporary: temps.Grants}).Get(ctx, &diff); err != nil {
		return diff, m.refuse(ctx, ErrMoverRefused, "policy: "+message(err))
	}
	if len(diff.Blocked) > 0 {
		return diff, m.refuse(ctx, ErrMoverRefused, strings.Join(diff.Blocked, "; "))
	}
	m.policyVersion, m.reasons = diff.PolicyVersion, diff.Reasons
	m.planned = plannedRefs(diff.Grant, diff.Approvals, diff.Keep)
	return diff, nil
}

// runningQuery selects the person's running runs of one lifecycle event.
// The employee ID is validated (E + 6 digits) and the event a constant,
// so both are safe inside the query.
func runningQuery(employeeID, event string) string {
	return fmt.Sprintf("%s = '%s' AND %s = '%s' AND ExecutionStatus = 'Running'",
		AttrEmployeeID.GetName(), employeeID, AttrLifecycleEvent.GetName(), event)
}

func (m *mover) findApp(name string) *appRun {
	for _, a := range m.apps {
		if a.res.Application == name {
			return a
		}
	}
	return nil
}

func (m *mover) addApp(ctx workflow.Context, name string) *appRun {
	a := &appRun{res: AccountResult{Application: name, Username: m.username}}
	m.apps = append(m.apps, a)
	names := make([]string, len(m.apps))
	for i, x := range m.apps {
		names[i] = x.res.Application
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrApplicationsTouched.ValueSet(names))
	return a
}

// provision brings every account the person has or needs up to date and
// grants the new birthright access, applications in parallel.
func (m *mover) provision(ctx workflow.Context, diff activities.DiffAccessResult) error {
	grants := map[string][]string{}
	names := slices.Clone(m.held)
	for _, g := range diff.Grant {
		grants[g.Application] = g.Entitlements
		if !m.existing[g.Application] {
			names = append(names, g.Application)
		}
	}
	slices.Sort(names)
	runs := make([]*appRun, len(names))
	for i, n := range names {
		runs[i] = m.addApp(ctx, n)
	}
	errs := make([]error, len(names))
	wg := workflow.NewWaitGroup(ctx)
	for i, a := range runs {
		wg.Add(1)
		workflow.Go(ctx, func(gctx workflow.Context) {
			defer wg.Done()
			if errs[i] = m.ensureAccount(gctx, a); errs[i] != nil {
				return
			}
			for _, ent := range grants[a.res.Application] {
				if errs[i] = m.grant(gctx, a, ent, nil); errs[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait(ctx)
	return errors.Join(errs...)
}

// ensureAccount updates the person's account attributes, or creates the
// account where they had none. Only a creation is undone: an account the
// person had before this run is never deleted by it.
func (m *mover) ensureAccount(ctx workflow.Context, a *appRun) error {
	p := m.in.Person
	app := a.res.Application
	exists := m.existing[app]
	summary := "Update account in " + app
	au := m.audit()
	au.Rules = appRules(m.reasons, m.planned, app)
	if !exists {
		summary = "Create account in " + app
		a.saga.add("delete account in "+app, func(c workflow.Context, why string) error {
			acct := activities.AccountInput{App: app, Username: m.username, Audit: undoAudit(au, why)}
			return workflow.ExecuteActivity(undoOptions(c, "Undo: delete account in "+app), acts.DeleteAccount, acct).Get(c, nil)
		})
	}
	account := connectors.Account{
		Username: m.username, EmployeeID: p.EmployeeID, GivenName: p.GivenName, FamilyName: p.FamilyName,
		DisplayName: p.DisplayName(), Email: p.Email,
	}
	var ensured connectors.EnsureAccountResponse
	if err := workflow.ExecuteActivity(provisionOptions(ctx, summary), acts.EnsureAccount,
		activities.EnsureAccountInput{App: app, Account: account, Audit: au}).Get(ctx, &ensured); err != nil {
		a.failed = true
		step := "update account"
		if !exists {
			step = "create account"
		}
		return &stepError{app: app, step: step, err: err}
	}
	a.res.Created = ensured.Created && !exists
	a.ready = true
	return nil
}

// audit is the ledger justification of the run's changes.
func (m *mover) audit() activities.Audit {
	return audit(m.in.Person.EmployeeID, ledger.EventMover, m.policyVersion)
}

// grant gives one entitlement the person did not hold, undo first.
// approved is the approval that allowed it, nil for birthright access.
func (m *mover) grant(ctx workflow.Context, a *appRun, ent string, approved *ApprovalRequest) error {
	app := a.res.Application
	why := ""
	au := withRules(m.audit(), m.reasons, app, ent)
	if approved != nil {
		why = " (approved)"
		au = withApproval(au, approved)
	}
	in := activities.EntitlementInput{App: app, Username: m.username, Entitlement: ent, Audit: au}
	a.saga.add("revoke "+ent+" in "+app, func(c workflow.Context, undoWhy string) error {
		undo := in
		undo.Audit = undoAudit(au, undoWhy)
		return workflow.ExecuteActivity(undoOptions(c, "Undo: revoke "+ent+" in "+app), acts.RevokeEntitlement, undo).Get(c, nil)
	})
	if err := workflow.ExecuteActivity(provisionOptions(ctx, "Grant "+ent+" in "+app+why), acts.GrantEntitlement, in).Get(ctx, nil); err != nil {
		return &stepError{app: app, step: "grant " + ent + why, err: err}
	}
	a.res.Entitlements = append(a.res.Entitlements, ent)
	return nil
}

// grantApproved grants an approved request, creating the account first
// where the person has none.
func (m *mover) grantApproved(ctx, waitCtx workflow.Context, r *ApprovalRequest) error {
	a := m.findApp(r.Application)
	if a == nil {
		a = m.addApp(ctx, r.Application)
		if err := m.ensureAccount(ctx, a); err != nil {
			return err
		}
	} else {
		if err := workflow.Await(waitCtx, func() bool { return a.ready || a.failed }); err != nil {
			return err
		}
		if a.failed {
			return &stepError{app: r.Application, step: "update account", err: errors.New("the account could not be brought up to date")}
		}
	}
	return m.grant(ctx, a, r.Entitlement, r)
}

// revokeAll removes what the new role no longer justifies, applications
// in parallel. Like the leaver's steps these retry until done and are
// never compensated; only input that can never work stops one, which is
// reported and flags the run for attention.
func (m *mover) revokeAll(ctx workflow.Context, revoke []activities.AppAccess) {
	wg := workflow.NewWaitGroup(ctx)
	for _, app := range revoke {
		wg.Add(1)
		workflow.Go(ctx, func(gctx workflow.Context) {
			defer wg.Done()
			for _, ent := range app.Entitlements {
				in := activities.EntitlementInput{App: app.Application, Username: m.username, Entitlement: ent,
					Audit: withNote(m.audit(), "no longer justified by policy after the role change")}
				err := workflow.ExecuteActivity(undoOptions(gctx, "Revoke "+ent+" in "+app.Application), acts.RevokeEntitlement, in).Get(gctx, nil)
				switch {
				case err == nil:
					m.revoked = append(m.revoked, activities.GrantRef{Application: app.Application, Entitlement: ent})
				case gctx.Err() != nil:
					return
				default:
					m.notRevoked = append(m.notRevoked, fmt.Sprintf("%s/%s: %s", app.Application, ent, message(err)))
					_ = workflow.UpsertTypedSearchAttributes(gctx, AttrNeedsAttention.ValueSet(true))
				}
			}
		})
	}
	wg.Wait(ctx)
	slices.SortFunc(m.revoked, func(x, y activities.GrantRef) int { return strings.Compare(x.String(), y.String()) })
}

// undo compensates what this run granted and created, after cause, and
// returns the error that ends the run. Revocations already done stay done.
func (m *mover) undo(ctx workflow.Context, cause error) error {
	m.setState(ctx, StateCompensating)
	cancelled, undoErr := undoRun(ctx, cause, &m.book, "role change", m.apps)
	m.apps = nil
	kept := ""
	if len(m.revoked) > 0 {
		kept = " (revocations already done stay done)"
	}
	if cancelled {
		m.st.Failure = "cancelled; the access this move granted was removed" + kept
		m.setState(ctx, StateCancelled)
		return cause
	}
	m.setState(ctx, StateFailed)
	if undoErr != nil {
		m.st.Failure = fmt.Sprintf("%v; compensation also failed: %v", cause, undoErr)
	} else {
		m.st.Failure = fmt.Sprintf("%v; the access this move granted was removed%s", cause, kept)
	}
	kind := ErrMoverFailed
	var ae *temporal.ApplicationError
	if errors.As(cause, &ae) && ae.Type() == ErrLeaverWins {
		kind = ErrLeaverWins
	}
	return temporal.NewNonRetryableApplicationError("role change failed: "+m.st.Failure, kind, nil)
}
