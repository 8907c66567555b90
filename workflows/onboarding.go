package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
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
	// Deferred is planned access that needs a human step (approval, or a
	// temporary-access request) and was not granted by this run.
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
	// Failure explains a failed or compensated run.
	Failure string `json:"failure,omitempty"`
}

// Onboarding provisions a joiner: it reserves the username, plans access
// from policy, then in every application (in parallel; each application's
// steps in order) ensures the account and grants its entitlements. A joiner
// whose start date is in the future is provisioned disabled and enabled on
// that date by a durable timer. If any step fails for good, or the run is
// cancelled, everything already done is undone so no half-provisioned person
// remains.
func Onboarding(ctx workflow.Context, in OnboardingInput) (OnboardingResult, error) {
	o := &onboarding{in: in, st: OnboardingState{State: StatePlanning}}
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (OnboardingState, error) { return o.st, nil }); err != nil {
		return OnboardingResult{}, err
	}
	return o.run(ctx)
}

type onboarding struct {
	in    OnboardingInput
	st    OnboardingState
	sagas []*saga
}

var acts *activities.Activities

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

	start := p.StartDate.Time
	future := start.After(workflow.Now(ctx))
	o.setState(ctx, StateProvisioning)
	apps := make([]string, len(plan.Applications))
	for i, a := range plan.Applications {
		apps[i] = a.Application
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrApplicationsTouched.ValueSet(apps))

	if err := o.provision(ctx, plan, user.Username, future); err != nil {
		return OnboardingResult{}, o.undo(ctx, err)
	}

	enabledAt := workflow.Now(ctx)
	if future {
		o.st.StartDate = p.StartDate.String()
		o.setState(ctx, StateWaitingStart)
		if err := workflow.NewTimerWithOptions(ctx, start.Sub(workflow.Now(ctx)),
			workflow.TimerOptions{Summary: "Wait for start date " + p.StartDate.String()}).Get(ctx, nil); err != nil {
			return OnboardingResult{}, o.undo(ctx, err)
		}
		o.setState(ctx, StateEnabling)
		if err := o.enableAll(ctx); err != nil {
			return OnboardingResult{}, o.undo(ctx, err)
		}
		enabledAt = workflow.Now(ctx)
	}
	o.setState(ctx, StateCompleted)
	return OnboardingResult{
		EmployeeID: p.EmployeeID, Username: user.Username, PolicyVersion: plan.PolicyVersion,
		Accounts: o.st.Accounts, Deferred: plan.Deferred, EnabledAt: enabledAt,
	}, nil
}

// provision runs every application in parallel and waits for all of them,
// so that compensation starts only once nothing is still in flight.
func (o *onboarding) provision(ctx workflow.Context, plan activities.PlanAccessResult, username string, disabled bool) error {
	o.st.Accounts = make([]AccountResult, len(plan.Applications))
	o.sagas = make([]*saga, len(plan.Applications))
	errs := make([]error, len(plan.Applications))
	wg := workflow.NewWaitGroup(ctx)
	for i, app := range plan.Applications {
		o.sagas[i] = &saga{}
		o.st.Accounts[i] = AccountResult{Application: app.Application, Username: username}
		wg.Add(1)
		workflow.Go(ctx, func(gctx workflow.Context) {
			defer wg.Done()
			errs[i] = o.provisionApp(gctx, app, username, disabled, o.sagas[i], &o.st.Accounts[i])
		})
	}
	wg.Wait(ctx)
	return errors.Join(errs...)
}

func (o *onboarding) provisionApp(ctx workflow.Context, app activities.AppAccess, username string, disabled bool, s *saga, res *AccountResult) error {
	p := o.in.Person
	account := connectors.Account{
		Username: username, EmployeeID: p.EmployeeID, GivenName: p.GivenName, FamilyName: p.FamilyName,
		DisplayName: p.DisplayName(), Email: p.Email,
	}
	acct := activities.AccountInput{App: app.Application, Username: username}
	s.add("delete account in "+app.Application, func(c workflow.Context) error {
		return workflow.ExecuteActivity(undoOptions(c, "Undo: delete account in "+app.Application), acts.DeleteAccount, acct).Get(c, nil)
	})
	var ensured connectors.EnsureAccountResponse
	if err := workflow.ExecuteActivity(provisionOptions(ctx, "Create account in "+app.Application), acts.EnsureAccount,
		activities.EnsureAccountInput{App: app.Application, Account: account, Disabled: disabled}).Get(ctx, &ensured); err != nil {
		return &stepError{app: app.Application, step: "create account", err: err}
	}
	res.Created = ensured.Created
	for _, ent := range app.Entitlements {
		in := activities.EntitlementInput{App: app.Application, Username: username, Entitlement: ent}
		s.add("revoke "+ent+" in "+app.Application, func(c workflow.Context) error {
			return workflow.ExecuteActivity(undoOptions(c, "Undo: revoke "+ent+" in "+app.Application), acts.RevokeEntitlement, in).Get(c, nil)
		})
		if err := workflow.ExecuteActivity(provisionOptions(ctx, "Grant "+ent+" in "+app.Application), acts.GrantEntitlement, in).Get(ctx, nil); err != nil {
			return &stepError{app: app.Application, step: "grant " + ent, err: err}
		}
		res.Entitlements = append(res.Entitlements, ent)
	}
	return nil
}

func (o *onboarding) enableAll(ctx workflow.Context) error {
	errs := make([]error, len(o.st.Accounts))
	wg := workflow.NewWaitGroup(ctx)
	for i, a := range o.st.Accounts {
		wg.Add(1)
		workflow.Go(ctx, func(gctx workflow.Context) {
			defer wg.Done()
			if err := workflow.ExecuteActivity(provisionOptions(gctx, "Enable account in "+a.Application), acts.EnableAccount,
				activities.AccountInput{App: a.Application, Username: a.Username}).Get(gctx, nil); err != nil {
				errs[i] = &stepError{app: a.Application, step: "enable account", err: err}
			}
		})
	}
	wg.Wait(ctx)
	return errors.Join(errs...)
}

// undo compensates after cause and returns the error that ends the run.
func (o *onboarding) undo(ctx workflow.Context, cause error) error {
	o.setState(ctx, StateCompensating)
	undoErrs := compensate(ctx, o.sagas)
	for i := range o.st.Accounts {
		o.st.Accounts[i].Entitlements = nil
	}
	o.st.Accounts = nil
	if ctx.Err() != nil || temporal.IsCanceledError(cause) {
		o.st.Failure = "cancelled; everything provisioned was removed"
		o.setState(ctx, StateCancelled)
		return cause
	}
	o.setState(ctx, StateFailed)
	if err := errors.Join(undoErrs...); err != nil {
		o.st.Failure = fmt.Sprintf("%v; compensation also failed: %v", cause, err)
		_ = workflow.UpsertTypedSearchAttributes(ctx, AttrNeedsAttention.ValueSet(true))
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
