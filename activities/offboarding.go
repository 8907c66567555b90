package activities

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/policy"
)

// PolicySource hands out the policy in force (policy.Watcher implements
// it); the leaver reads each application's retention from it.
type PolicySource interface {
	Current() *policy.Policy
}

// UsernameLookup finds the username reserved for a person without
// reserving one. The username store (internal/username.Reserver) implements
// it next to Reserve; a leaver must never create a reservation.
type UsernameLookup interface {
	Lookup(ctx context.Context, employeeID string) (string, bool, error)
}

// appReadTimeout bounds the read of one application inside FindAccounts,
// so one hanging application cannot use up the whole activity and hide
// the answers of the others.
const appReadTimeout = 20 * time.Second

// readTimeout is appReadTimeout, shortened to leave a third of the
// activity's remaining time for reporting.
func readTimeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl) * 2 / 3; d > 0 {
			return min(d, appReadTimeout)
		}
	}
	return appReadTimeout
}

// FindAccountsInput names the leaver, and optionally the applications to
// look in.
type FindAccountsInput struct {
	EmployeeID string `json:"employeeId"`
	// Applications limits the search; empty means every application this
	// worker has a connector for.
	Applications []string `json:"applications,omitempty"`
	// RetryUnreadable fails the call, retryably, when an application
	// cannot be read for a reason a retry can cure (down, timing out), so
	// the activity's retry policy waits out an outage. Callers that act on
	// the readable applications at once and retry the others themselves
	// (the leaver) leave it off.
	RetryUnreadable bool `json:"retryUnreadable,omitempty"`
}

// FindAccountsResult is what a person holds. One unreachable application
// does not fail the call: it is reported with its error so the workflow
// can act on the others at once and retry only that one.
type FindAccountsResult struct {
	// Username is the person's reserved username; empty when none is
	// reserved, in which case no application was searched.
	Username string `json:"username,omitempty"`
	// Applications has one entry per searched application, sorted by name.
	Applications []FoundAccount `json:"applications,omitempty"`
}

// FoundAccount is the person's account in one application, as read now.
type FoundAccount struct {
	Application string `json:"application"`
	// Exists is true when the application holds an account of this person.
	Exists bool `json:"exists"`
	// Foreign is true when an account with the username exists but carries
	// another (or no) employee ID: provisio did not create it for this
	// person, so a leaver must not touch it.
	Foreign bool `json:"foreign,omitempty"`
	// Disabled and Entitlements describe an existing account.
	Disabled     bool     `json:"disabled,omitempty"`
	Entitlements []string `json:"entitlements,omitempty"`
	// Retention is how long the disabled account is kept before deletion,
	// from the policy in force when it was read.
	Retention time.Duration `json:"retention"`
	// DisableFallback is what the leaver does if the application ignores
	// the disable (FallbackFlag or FallbackDelete), from the same policy.
	DisableFallback string `json:"disableFallback,omitempty"`
	// Error says why the application could not be read, and ErrorKind is
	// its connector error kind; both are empty on success.
	Error     string `json:"error,omitempty"`
	ErrorKind string `json:"errorKind,omitempty"`
}

// FindAccounts looks up the person's reserved username and reads the
// account of that username in every application (in parallel), with the
// per-application retention from policy. It changes nothing.
func (a *Activities) FindAccounts(ctx context.Context, in FindAccountsInput) (FindAccountsResult, error) {
	const op = "FindAccounts"
	if !hr.ValidEmployeeID(in.EmployeeID) {
		return FindAccountsResult{}, invalid(op, "employee ID %q is not E + 6 digits", in.EmployeeID)
	}
	apps := in.Applications
	if len(apps) == 0 {
		for name := range a.Connectors {
			apps = append(apps, name)
		}
	}
	apps = slices.Clone(apps)
	slices.Sort(apps)
	apps = slices.Compact(apps)
	for _, app := range apps {
		if _, err := a.connector(app, op); err != nil {
			return FindAccountsResult{}, err
		}
	}
	lookup, ok := a.Usernames.(UsernameLookup)
	if !ok {
		return FindAccountsResult{}, invalid(op, "the username store cannot look usernames up")
	}
	username, found, err := lookup.Lookup(ctx, in.EmployeeID)
	if err != nil {
		return FindAccountsResult{}, classify("usernames", op, err)
	}
	if !found {
		return FindAccountsResult{}, nil
	}

	res := FindAccountsResult{Username: username, Applications: make([]FoundAccount, len(apps))}
	timeout := readTimeout(ctx)
	var wg sync.WaitGroup
	for i, app := range apps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			actx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			res.Applications[i] = a.findAccount(actx, app, in.EmployeeID, username)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return FindAccountsResult{}, err
	}
	if in.RetryUnreadable {
		for _, f := range res.Applications {
			if f.Error != "" && connectors.ErrorKind(f.ErrorKind).Retryable() {
				return FindAccountsResult{}, temporal.NewApplicationError(
					op+": cannot read the account in "+f.Application+" (retrying): "+f.Error, f.ErrorKind)
			}
		}
	}
	return res, nil
}

func (a *Activities) findAccount(ctx context.Context, app, employeeID, username string) FoundAccount {
	f := FoundAccount{Application: app, Retention: a.retention(app), DisableFallback: a.disableFallback(app)}
	acct, err := a.Connectors[app].GetAccount(ctx, connectors.AccountRequest{Username: username})
	var ae *temporal.ApplicationError
	switch {
	case connectors.IsNotFound(err):
	case errors.As(classify(app, "GetAccount", err), &ae):
		f.Error, f.ErrorKind = ae.Message(), ae.Type()
	case acct.EmployeeID != employeeID:
		f.Foreign = true
	default:
		f.Exists, f.Disabled, f.Entitlements = true, acct.Disabled, acct.Entitlements
	}
	return f
}

// retention is the application's leaver retention in the policy in force,
// or the built-in default without a policy.
func (a *Activities) retention(app string) time.Duration {
	if a.Policy == nil {
		return policy.DefaultRetention
	}
	if p := a.Policy.Current(); p != nil {
		return p.Retention(app)
	}
	return policy.DefaultRetention
}

// What a leaver does when an application ignores a disable
// (FoundAccount.DisableFallback); the policy's leaver.disable_fallback.
const (
	FallbackFlag   = policy.FallbackFlag
	FallbackDelete = policy.FallbackDelete
)

// disableFallback is the application's disable fallback in the policy in
// force, or FallbackFlag without a policy: deleting needs a rule that says
// so.
func (a *Activities) disableFallback(app string) string {
	if a.Policy != nil {
		if p := a.Policy.Current(); p != nil {
			return p.DisableFallback(app)
		}
	}
	return FallbackFlag
}

// defaultMaxWait is how long one AwaitWorkflowClosed call waits when the
// input does not say.
const defaultMaxWait = time.Minute

// AwaitWorkflowClosedInput names a workflow to wait for.
type AwaitWorkflowClosedInput struct {
	WorkflowID string `json:"workflowId"`
	// MaxWait bounds how long one call waits for the run to close; the
	// caller asks again while it runs. Keep it below the activity's
	// StartToCloseTimeout.
	MaxWait time.Duration `json:"maxWait,omitempty"`
}

// AwaitWorkflowClosedResult says whether the latest run of a workflow ID
// has closed.
type AwaitWorkflowClosedResult struct {
	// Found is false when no run with this ID exists.
	Found bool `json:"found"`
	// Closed is true when the latest run has closed, or none exists.
	Closed bool `json:"closed"`
	// Status is the run's status in lower case (running, completed,
	// canceled, ...).
	Status string `json:"status,omitempty"`
	// CloseTime is when a closed run closed, by the server's clock.
	CloseTime time.Time `json:"closeTime,omitzero"`
}

// AwaitWorkflowClosed waits, at most MaxWait, for the latest run of a
// workflow to close, and reports how it stands. The leaver uses it to know
// when a cancelled onboarding has finished undoing its work.
func (a *Activities) AwaitWorkflowClosed(ctx context.Context, in AwaitWorkflowClosedInput) (AwaitWorkflowClosedResult, error) {
	const op = "AwaitWorkflowClosed"
	if in.WorkflowID == "" {
		return AwaitWorkflowClosedResult{}, invalid(op, "workflow ID is empty")
	}
	wait := in.MaxWait
	if wait <= 0 {
		wait = defaultMaxWait
	}
	c := activity.GetClient(ctx)
	if c == nil {
		return AwaitWorkflowClosedResult{}, invalid(op, "no Temporal client: run this activity in a worker")
	}
	res, runID, err := describeRun(ctx, c, in.WorkflowID)
	if err != nil || res.Closed {
		return res, err
	}
	defer heartbeatEvery(ctx, 5*time.Second, activity.RecordHeartbeat)()
	wctx, cancel := context.WithTimeout(ctx, wait)
	// The run's own outcome does not matter here, only that it ended; the
	// describe below tells a closed run from a wait that ran out.
	_ = c.GetWorkflow(wctx, in.WorkflowID, runID).Get(wctx, nil)
	cancel()
	if err := ctx.Err(); err != nil {
		return AwaitWorkflowClosedResult{}, err
	}
	res, _, err = describeRun(ctx, c, in.WorkflowID)
	return res, err
}

// describer is the part of the Temporal client describeRun needs.
type describer interface {
	DescribeWorkflow(ctx context.Context, workflowID, runID string) (*client.WorkflowExecutionDescription, error)
}

func describeRun(ctx context.Context, c describer, workflowID string) (AwaitWorkflowClosedResult, string, error) {
	desc, err := c.DescribeWorkflow(ctx, workflowID, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return AwaitWorkflowClosedResult{Closed: true}, "", nil
	}
	if err != nil {
		return AwaitWorkflowClosedResult{}, "", classify("temporal", "AwaitWorkflowClosed", err)
	}
	res := AwaitWorkflowClosedResult{Found: true, Status: statusName(desc.Status)}
	if desc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		res.Closed = true
		if desc.WorkflowCloseTime != nil {
			res.CloseTime = desc.WorkflowCloseTime.UTC()
		}
	}
	return res, desc.WorkflowExecution.RunID, nil
}

func statusName(s enumspb.WorkflowExecutionStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "WORKFLOW_EXECUTION_STATUS_"))
}
