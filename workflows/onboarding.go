package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
)

// QueryState is the query every lifecycle workflow answers with its state.
const QueryState = "state"

// OnboardingInput starts a joiner. It holds the HR record only: no password
// or other secret ever enters a workflow.
type OnboardingInput struct {
	Person hr.Person `json:"person"`
}

// OnboardingResult is what a finished onboarding provisioned.
type OnboardingResult struct {
	EmployeeID    string          `json:"employeeId"`
	Username      string          `json:"username"`
	PolicyVersion string          `json:"policyVersion"`
	Accounts      []AccountResult `json:"accounts"`
	// Approvals are the requests for approval-gated access and how each
	// ended: granted, or rejected with who and why.
	Approvals []ApprovalRequest `json:"approvals,omitempty"`
	// Deferred is planned access that needs a separate request (temporary
	// access) and was not granted by this run.
	Deferred []activities.DeferredAccess `json:"deferred,omitempty"`
	// EnabledAt is when the accounts became usable: the start of the run,
	// or the start date for a future joiner.
	EnabledAt time.Time `json:"enabledAt"`
}

// AccountResult is the access provisioned in one application.
type AccountResult struct {
	Application  string   `json:"application"`
	Username     string   `json:"username"`
	Created      bool     `json:"created"`
	Entitlements []string `json:"entitlements,omitempty"`
}

// OnboardingState is the answer to QueryState.
type OnboardingState struct {
	State    string          `json:"state"`
	Username string          `json:"username,omitempty"`
	Accounts []AccountResult `json:"accounts,omitempty"`
	// StartDate is set while a future joiner waits for it.
	StartDate string `json:"startDate,omitempty"`
	// WaitingApprovers are who may decide an approval request now.
	WaitingApprovers []string `json:"waitingApprovers,omitempty"`
	// LeaverScheduled is the last day of a fixed-term contract whose
	// offboarding this run scheduled.
	LeaverScheduled string `json:"leaverScheduled,omitempty"`
	// Failure explains a failed or compensated run.
	Failure string `json:"failure,omitempty"`
}

// Onboarding provisions a joiner: it reserves the username, plans access
// from policy, then in every application (in parallel; each application's
// steps in order) ensures the account and grants its entitlements. Access
// that policy gates behind approval is requested at the same time (see
// UpdateDecide) and granted once approved, while the rest goes ahead. A
// joiner whose start date is in the future is provisioned disabled and
// enabled on that date by a durable timer. If any step fails for good, or
// the run is cancelled, everything already done is undone so no
// half-provisioned person remains.
func Onboarding(ctx workflow.Context, in OnboardingInput) (OnboardingResult, error) {
	o := &onboarding{in: in, st: OnboardingState{State: StatePlanning}}
	// Request IDs name the run by OnboardingID, the ID every onboarding is
	// started under, taken from the input so a replay (under any ID)
	// rebuilds the same requests.
	o.book = approvalBook{workflowID: OnboardingID(in.Person.EmployeeID), employeeID: in.Person.EmployeeID}
	if err := workflow.SetQueryHandler(ctx, QueryState, o.state); err != nil {
		return OnboardingResult{}, err
	}
	// Before anything blocks, so an early decision meets a handler (and is
	// refused as unknown until the plan exists).
	if err := o.book.register(ctx); err != nil {
		return OnboardingResult{}, err
	}
	return o.run(ctx)
}

type onboarding struct {
	in OnboardingInput
	st OnboardingState
	// apps are the applications the run created an account in, birthright
	// ones first in plan order, then those only an approval brought.
	apps []*appRun
	book approvalBook
	// future is set when the start date is ahead: accounts start disabled.
	future bool
	// enabled is set once the start date came and enabling began.
	enabled bool
	// creating counts accounts an approval is creating right now.
	creating int
	// policyVersion, reasons and planned are the plan's, for the access
	// ledger.
	policyVersion string
	reasons       map[string][]string
	planned       []activities.GrantRef
}

// appRun is the run's work in one application: what is held and how to
// undo it.
type appRun struct {
	res  AccountResult
	saga saga
	// ready is set once the account exists; failed if creating it failed.
	ready, failed bool
}

var acts *activities.Activities

func (o *onboarding) state() (OnboardingState, error) {
	st := o.st
	st.Accounts = o.accounts()
	st.WaitingApprovers = o.book.waiting
	return st, nil
}

func (o *onboarding) accounts() []AccountResult {
	out := make([]AccountResult, len(o.apps))
	for i, a := range o.apps {
		out[i] = a.res
		out[i].Entitlements = slices.Clone(a.res.Entitlements)
	}
	return out
}

func (o *onboarding) setState(ctx workflow.Context, state string) {
	o.st.State = state
	workflow.SetCurrentDetails(ctx, "State: "+state)
	// Upserting a registered attribute only fails for a programming error;
	// the state is still visible through the query, so log and go on.
	if err := workflow.UpsertTypedSearchAttributes(ctx, AttrLifecycleState.ValueSet(state)); err != nil {
		workflow.GetLogger(ctx).Warn("Cannot upsert state", "error", err)
	}
}

func (o *onboarding) run(ctx workflow.Context) (OnboardingResult, error) {
	p := o.in.Person
	if err := p.Validate(); err != nil {
		o.setState(ctx, StateFailed)
		return OnboardingResult{}, temporal.NewNonRetryableApplicationError("invalid HR record: "+err.Error(), string(connectors.KindInvalid), nil)
	}

	var user activities.ReserveUsernameResult
	err := workflow.ExecuteActivity(provisionOptions(ctx, "Reserve username"), acts.ReserveUsername,
		activities.ReserveUsernameInput{EmployeeID: p.EmployeeID, GivenName: p.GivenName, FamilyName: p.FamilyName}).Get(ctx, &user)
	if err != nil {
		o.setState(ctx, StateFailed)
		return OnboardingResult{}, o.failure("usernames", err)
	}
	o.st.Username = user.Username

	var plan activities.PlanAccessResult
	if err := workflow.ExecuteActivity(provisionOptions(ctx, "Plan access from policy"), acts.PlanAccess,
		activities.PlanAccessInput{Person: p}).Get(ctx, &plan); err != nil {
		o.setState(ctx, StateFailed)
		return OnboardingResult{}, o.failure("policy", err)
	}

	o.policyVersion, o.reasons = plan.PolicyVersion, plan.Reasons
	o.planned = plannedRefs(plan.Applications, plan.Approvals, nil)
	start := p.StartDate.Time
	o.future = start.After(workflow.Now(ctx))
	o.setState(ctx, StateProvisioning)
	// Approval requests run alongside provisioning: nobody waits for an
	// approver to get the access that needs none.
	o.book.plan(ctx, plan.Approvals)
	o.book.start(ctx, o.grantApproved)

	if err := o.provision(ctx, plan); err != nil {
		return OnboardingResult{}, o.undo(ctx, err)
	}
	if workflow.GetVersion(ctx, "schedule-known-leaver", workflow.DefaultVersion, 1) >= 1 && !plan.LeaverDate.IsZero() {
		o.scheduleLeaver(ctx, plan.LeaverDate, plan.LeaverReason)
	}

	enabledAt := workflow.Now(ctx)
	if o.future {
		o.st.StartDate = p.StartDate.String()
		o.setState(ctx, StateWaitingStart)
		if err := o.waitForStart(ctx, start); err != nil {
			return OnboardingResult{}, o.undo(ctx, err)
		}
		o.setState(ctx, StateEnabling)
		if err := o.enableAll(ctx); err != nil {
			return OnboardingResult{}, o.undo(ctx, err)
		}
		enabledAt = workflow.Now(ctx)
	}
	if o.book.open() > 0 {
		o.setState(ctx, StateWaitingApproval)
	}
	// A grant that fails for good ends the wait at once: the run undoes
	// itself rather than wait days for the other requests.
	if err := workflow.Await(ctx, func() bool { return o.book.running == 0 || o.book.err != nil }); err != nil {
		return OnboardingResult{}, o.undo(ctx, err)
	}
	if o.book.err != nil {
		return OnboardingResult{}, o.undo(ctx, o.book.err)
	}
	o.setState(ctx, StateCompleted)
	res, _ := o.book.query()
	return OnboardingResult{
		EmployeeID: p.EmployeeID, Username: user.Username, PolicyVersion: plan.PolicyVersion,
		Accounts: o.accounts(), Approvals: res.Requests, Deferred: plan.Deferred, EnabledAt: enabledAt,
	}, nil
}

// scheduleLeaver starts the offboarding a fixed-term contract already
// implies, as soon as the person holds access, so nobody has to remember to
// end it. It outlives this run (ParentClosePolicy abandon). An offboarding
// HR already started wins: the duplicate start is only logged.
func (o *onboarding) scheduleLeaver(ctx workflow.Context, lastDay hr.Date, reason string) {
	eid := o.in.Person.EmployeeID
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            OffboardingID(eid),
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		StaticSummary:         "Offboarding of " + eid + " at the end of the contract",
		TypedSearchAttributes: temporal.NewSearchAttributes(
			AttrEmployeeID.ValueSet(eid),
			AttrLifecycleEvent.ValueSet(EventLeaver),
			AttrLifecycleState.ValueSet(StateScheduled),
		),
	})
	child := workflow.ExecuteChildWorkflow(cctx, Offboarding, OffboardingInput{EmployeeID: eid, LastDay: lastDay, Reason: reason})
	if err := child.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Info("Offboarding for the contract end not started", "lastDay", lastDay.String(), "error", err)
		return
	}
	o.st.LeaverScheduled = lastDay.String()
}

// waitForStart sleeps until the start date, or until an approved grant
// failed for good (then the run is undone without waiting).
func (o *onboarding) waitForStart(ctx workflow.Context, start time.Time) error {
	d := start.Sub(workflow.Now(ctx))
	if d <= 0 {
		return o.book.err
	}
	failed, err := awaitTimeout(ctx, d, "Wait for start date "+o.in.Person.StartDate.String(),
		func() bool { return o.book.err != nil })
	if err != nil {
		return err
	}
	if failed {
		return o.book.err
	}
	return nil
}

func (o *onboarding) addApp(name string) *appRun {
	a := &appRun{res: AccountResult{Application: name, Username: o.st.Username}}
	o.apps = append(o.apps, a)
	return a
}

func (o *onboarding) findApp(name string) *appRun {
	for _, a := range o.apps {
		if a.res.Application == name {
			return a
		}
	}
	return nil
}

func (o *onboarding) upsertApps(ctx workflow.Context) {
	names := make([]string, len(o.apps))
	for i, a := range o.apps {
		names[i] = a.res.Application
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrApplicationsTouched.ValueSet(names))
}

// provision runs every application in parallel and waits for all of them,
// so that compensation starts only once nothing is still in flight.
func (o *onboarding) provision(ctx workflow.Context, plan activities.PlanAccessResult) error {
	runs := make([]*appRun, len(plan.Applications))
	for i, app := range plan.Applications {
		runs[i] = o.addApp(app.Application)
	}
	o.upsertApps(ctx)
	errs := make([]error, len(plan.Applications))
	wg := workflow.NewWaitGroup(ctx)
	for i, app := range plan.Applications {
		wg.Add(1)
		workflow.Go(ctx, func(gctx workflow.Context) {
			defer wg.Done()
			errs[i] = o.provisionApp(gctx, app, runs[i])
		})
	}
	wg.Wait(ctx)
	return errors.Join(errs...)
}

func (o *onboarding) provisionApp(ctx workflow.Context, app activities.AppAccess, a *appRun) error {
	if err := o.ensureAccount(ctx, a, o.future); err != nil {
		return err
	}
	for _, ent := range app.Entitlements {
		if err := o.grant(ctx, a, ent, nil); err != nil {
			return err
		}
	}
	return nil
}

// ensureAccount creates the person's account in a's application. The undo
// is recorded first: a creation that timed out may still have happened.
func (o *onboarding) ensureAccount(ctx workflow.Context, a *appRun, disabled bool) error {
	p := o.in.Person
	app := a.res.Application
	account := connectors.Account{
		Username: o.st.Username, EmployeeID: p.EmployeeID, GivenName: p.GivenName, FamilyName: p.FamilyName,
		DisplayName: p.DisplayName(), Email: p.Email,
	}
	au := o.audit()
	au.Rules = appRules(o.reasons, o.planned, app)
	a.saga.add("delete account in "+app, func(c workflow.Context, why string) error {
		acct := activities.AccountInput{App: app, Username: o.st.Username, Audit: undoAudit(au, why)}
		return workflow.ExecuteActivity(undoOptions(c, "Undo: delete account in "+app), acts.DeleteAccount, acct).Get(c, nil)
	})
	var ensured connectors.EnsureAccountResponse
	if err := workflow.ExecuteActivity(provisionOptions(ctx, "Create account in "+app), acts.EnsureAccount,
		activities.EnsureAccountInput{App: app, Account: account, Disabled: disabled, Audit: au}).Get(ctx, &ensured); err != nil {
		a.failed = true
		return &stepError{app: app, step: "create account", err: err}
	}
	a.res.Created = ensured.Created
	a.ready = true
	return nil
}

// audit is the ledger justification of the run's changes.
func (o *onboarding) audit() activities.Audit {
	return audit(o.in.Person.EmployeeID, ledger.EventJoiner, o.policyVersion)
}

// grant gives one entitlement in a's application, undo first. approved is
// the approval that allowed it, nil for birthright access.
func (o *onboarding) grant(ctx workflow.Context, a *appRun, ent string, approved *ApprovalRequest) error {
	app := a.res.Application
	why := ""
	au := withRules(o.audit(), o.reasons, app, ent)
	if approved != nil {
		why = " (approved)"
		au = withApproval(au, approved)
	}
	in := activities.EntitlementInput{App: app, Username: o.st.Username, Entitlement: ent, Audit: au}
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

// grantApproved grants an approved request once the account exists: the
// birthright one, or one created now for access only the approval brought.
// Its undo goes into the application's saga like any other grant.
func (o *onboarding) grantApproved(ctx, waitCtx workflow.Context, r *ApprovalRequest) error {
	a, err := o.accountFor(ctx, waitCtx, r.Application)
	if err != nil {
		return err
	}
	return o.grant(ctx, a, r.Entitlement, r)
}

func (o *onboarding) accountFor(ctx, waitCtx workflow.Context, app string) (*appRun, error) {
	if a := o.findApp(app); a != nil {
		if err := workflow.Await(waitCtx, func() bool { return a.ready || a.failed }); err != nil {
			return nil, err
		}
		if a.failed {
			return nil, &stepError{app: app, step: "create account", err: errors.New("the account could not be created")}
		}
		return a, nil
	}
	a := o.addApp(app)
	o.upsertApps(ctx)
	// Enabling waits for creations in flight, so an account created
	// disabled here is enabled on the start date with the others.
	o.creating++
	defer func() { o.creating-- }()
	if err := o.ensureAccount(ctx, a, o.future && !o.enabled); err != nil {
		return nil, err
	}
	return a, nil
}

func (o *onboarding) enableAll(ctx workflow.Context) error {
	o.enabled = true
	if err := workflow.Await(ctx, func() bool { return o.creating == 0 }); err != nil {
		return err
	}
	var ready []*appRun
	for _, a := range o.apps {
		if a.ready {
			ready = append(ready, a)
		}
	}
	errs := make([]error, len(ready))
	wg := workflow.NewWaitGroup(ctx)
	for i, a := range ready {
		wg.Add(1)
		workflow.Go(ctx, func(gctx workflow.Context) {
			defer wg.Done()
			app := a.res.Application
			if err := workflow.ExecuteActivity(provisionOptions(gctx, "Enable account in "+app), acts.EnableAccount,
				activities.AccountInput{App: app, Username: a.res.Username, Audit: o.audit()}).Get(gctx, nil); err != nil {
				errs[i] = &stepError{app: app, step: "enable account", err: err}
			}
		})
	}
	wg.Wait(ctx)
	return errors.Join(errs...)
}

// undo compensates after cause and returns the error that ends the run.
// Approval requests stop first, and their grants in flight finish, so
// compensation sees every step that may have taken effect.
func (o *onboarding) undo(ctx workflow.Context, cause error) error {
	o.setState(ctx, StateCompensating)
	cancelled, undoErr := undoRun(ctx, cause, &o.book, "onboarding", o.apps)
	o.apps = nil
	if cancelled {
		o.st.Failure = "cancelled; everything provisioned was removed"
		o.setState(ctx, StateCancelled)
		return cause
	}
	o.setState(ctx, StateFailed)
	if undoErr != nil {
		o.st.Failure = fmt.Sprintf("%v; compensation also failed: %v", cause, undoErr)
	} else {
		o.st.Failure = fmt.Sprintf("%v; everything provisioned was removed", cause)
	}
	return temporal.NewNonRetryableApplicationError("onboarding failed: "+o.st.Failure, "OnboardingFailed", nil)
}

func (o *onboarding) failure(app string, err error) error {
	o.st.Failure = (&stepError{app: app, step: "prepare", err: err}).Error()
	return temporal.NewNonRetryableApplicationError("onboarding failed: "+o.st.Failure, "OnboardingFailed", nil)
}

// stepError names the application and step that failed, for the result an
// operator reads.
type stepError struct {
	app, step string
	err       error
}

func (e *stepError) Error() string {
	msg := e.err.Error()
	var ae *temporal.ApplicationError
	if errors.As(e.err, &ae) {
		msg = ae.Message()
	}
	return fmt.Sprintf("%s: %s: %s", e.app, e.step, msg)
}

func (e *stepError) Unwrap() error { return e.err }
