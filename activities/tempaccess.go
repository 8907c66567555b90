package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/policy"
)

// DefaultTemporaryDuration is how long temporary access lasts when the
// request names no duration; the policy's max_duration still caps it.
const DefaultTemporaryDuration = 90 * policy.Day

// PersonDirectory is a Directory that also hands out a person's HR record.
// A request's approvals are routed by policy from that record (the manager
// step goes to the person's manager), so temporary access needs it; the
// worker's roster directory implements it.
type PersonDirectory interface {
	Person(ctx context.Context, employeeID string) (p hr.Person, found bool, err error)
}

// PlanRequestInput is a request for one entitlement for a while.
type PlanRequestInput struct {
	EmployeeID  string `json:"employeeId"`
	Application string `json:"application"`
	Entitlement string `json:"entitlement"`
	// Duration is the time asked for; zero asks for
	// DefaultTemporaryDuration.
	Duration time.Duration `json:"duration,omitempty"`
}

// PlanRequestResult is what policy says about a request, recorded in the
// history with the policy version that decided it.
type PlanRequestResult struct {
	PolicyVersion string `json:"policyVersion"`
	// Username is the person's reserved username.
	Username string `json:"username"`
	// Account is the person's account data from HR, used to create the
	// account in the application when they have none there yet.
	Account connectors.Account `json:"account"`
	// AccountExists is true when the application already holds the
	// person's account (provisio's, with their employee ID).
	AccountExists bool `json:"accountExists"`
	// Duration is what is granted: the time asked for, or the default,
	// capped to MaxDuration. Capped says the cap applied.
	Duration time.Duration `json:"duration"`
	Capped   bool          `json:"capped,omitempty"`
	// MaxDuration is the longest single grant the policy allows; an
	// extension may not push the expiry further than this from now.
	MaxDuration time.Duration `json:"maxDuration"`
	// RemindBefore is how long before expiry the holder is reminded.
	RemindBefore time.Duration `json:"remindBefore"`
	// ExtensionNeedsApproval means an extension passes Steps again.
	ExtensionNeedsApproval bool `json:"extensionNeedsApproval"`
	// Steps are the approvals to pass, in order; empty means none. A
	// separation-of-duties set that allows the combination with approval
	// adds its approver as the last step.
	Steps []ApprovalStep `json:"steps,omitempty"`
	// Conflicts name the separation-of-duties sets the grant would break
	// with approval, for the audit trail.
	Conflicts []string `json:"conflicts,omitempty"`
}

// PlanRequest checks a temporary-access request against the policy in
// force: the person must be active in HR and already provisioned (a
// reserved username), the entitlement must exist, and the grant must not
// break a blocking separation-of-duties set given what the person holds.
// The duration is capped to the policy's max_duration rather than refused,
// so "as long as allowed" is simply a long request.
func (a *Activities) PlanRequest(ctx context.Context, in PlanRequestInput) (PlanRequestResult, error) {
	const op = "PlanRequest"
	if !hr.ValidEmployeeID(in.EmployeeID) {
		return PlanRequestResult{}, invalid(op, "employee ID %q is not E + 6 digits", in.EmployeeID)
	}
	if in.Duration < 0 {
		return PlanRequestResult{}, invalid(op, "negative duration %s", in.Duration)
	}
	if a.Policy == nil || a.Policy.Current() == nil {
		return PlanRequestResult{}, invalid(op, "this worker has no policy loaded")
	}
	pol := a.Policy.Current()
	ref := policy.Ref{Application: in.Application, Entitlement: in.Entitlement}
	ent := pol.Entitlement(ref)
	if ent == nil {
		return PlanRequestResult{}, invalid(op, "the policy declares no entitlement %s", ref)
	}
	if _, err := a.connector(in.Application, op); err != nil {
		return PlanRequestResult{}, err
	}
	dir, ok := a.Directory.(PersonDirectory)
	if !ok {
		return PlanRequestResult{}, invalid(op, "this worker's HR directory cannot look people up")
	}
	person, found, err := dir.Person(ctx, in.EmployeeID)
	if err != nil {
		return PlanRequestResult{}, classify("hr", op, err)
	}
	if !found {
		return PlanRequestResult{}, invalid(op, "%s is not in the HR directory", in.EmployeeID)
	}
	if person.Status != hr.StatusActive {
		return PlanRequestResult{}, invalid(op, "%s is not active in HR (status %s)", in.EmployeeID, person.Status)
	}

	res := PlanRequestResult{PolicyVersion: pol.Version, MaxDuration: ent.Temporary.MaxDuration}
	res.Duration = in.Duration
	if res.Duration == 0 {
		res.Duration = DefaultTemporaryDuration
	}
	if res.Duration > res.MaxDuration {
		res.Duration, res.Capped = res.MaxDuration, true
	}
	item, err := pol.Request(person, ref, res.Duration)
	if err != nil {
		return PlanRequestResult{}, invalid(op, "%v", err)
	}
	res.RemindBefore, res.ExtensionNeedsApproval = item.RemindBefore, item.ExtensionNeedsApproval
	res.Steps = fromPolicySteps(item.Approvals)

	// Only a provisioned person may ask: the username is the one the
	// onboarding reserved, never a new one.
	found2, err := a.FindAccounts(ctx, FindAccountsInput{EmployeeID: in.EmployeeID})
	if err != nil {
		return PlanRequestResult{}, err
	}
	if found2.Username == "" {
		return PlanRequestResult{}, invalid(op, "%s has no username: only a person onboarded by provisio can request access", in.EmployeeID)
	}
	res.Username = found2.Username
	res.Account = connectors.Account{
		Username: found2.Username, EmployeeID: person.EmployeeID, GivenName: person.GivenName,
		FamilyName: person.FamilyName, DisplayName: person.DisplayName(), Email: person.Email,
	}
	var held []policy.Held
	for _, f := range found2.Applications {
		switch {
		case f.Error != "":
			// Without the holdings a separation-of-duties check could
			// wrongly pass: retry rather than guess.
			return PlanRequestResult{}, temporal.NewApplicationError(f.Error, f.ErrorKind)
		case f.Foreign && f.Application == in.Application:
			return PlanRequestResult{}, invalid(op, "%s already holds an account %q that provisio did not create for %s",
				in.Application, found2.Username, in.EmployeeID)
		case f.Exists:
			if f.Application == in.Application {
				res.AccountExists = true
			}
			for _, e := range f.Entitlements {
				held = append(held, policy.Held{Application: f.Application, Entitlement: e})
			}
		}
	}
	for _, c := range pol.CheckSoD(policy.Plan{EmployeeID: in.EmployeeID, PolicyVersion: pol.Version, Items: []policy.Item{item}}, held) {
		if c.Preexisting() {
			continue
		}
		switch {
		case c.Action == policy.SoDBlock:
			return PlanRequestResult{}, invalid(op, "%s would break separation of duties %q: %s", ref, c.SoD, refs(c.Entitlements))
		case c.Approval != nil:
			res.Steps = append(res.Steps, fromPolicySteps([]policy.ApprovalStep{*c.Approval})...)
			res.Conflicts = append(res.Conflicts, c.SoD)
		}
	}
	return res, nil
}

func refs(rs []policy.Ref) string {
	s := ""
	for i, r := range rs {
		if i > 0 {
			s += ", "
		}
		s += r.String()
	}
	return s
}

// fromPolicySteps copies resolved policy steps into the activity type,
// which keeps workflows free of the policy engine.
func fromPolicySteps(steps []policy.ApprovalStep) []ApprovalStep {
	if len(steps) == 0 {
		return nil
	}
	out := make([]ApprovalStep, len(steps))
	for i, s := range steps {
		out[i] = ApprovalStep{
			Kind: string(s.Kind), ApproverID: s.ApproverID, EscalateAfter: s.EscalateAfter, ExpireAfter: s.ExpireAfter,
			Fallback: s.Fallback, Unresolved: s.Unresolved,
		}
	}
	return out
}

// RemindInput is a reminder that temporary access ends soon.
type RemindInput struct {
	EmployeeID  string    `json:"employeeId"`
	Application string    `json:"application"`
	Entitlement string    `json:"entitlement"`
	ExpiresAt   time.Time `json:"expiresAt"`
}

// RemindResult is the reminder as delivered.
type RemindResult struct {
	// Message is the text of the reminder.
	Message string `json:"message"`
	// Channel says where it went.
	Channel string `json:"channel"`
}

// RemindChannelLog is the only reminder channel there is for now: the
// worker's log, at Info level with the key "reminder". A mail or chat
// sender would go here; the workflow records the reminder either way.
const RemindChannelLog = "worker-log"

// RemindTemporaryAccess tells the holder that their access ends soon. With
// no mail system it writes the reminder to the worker's log; the workflow
// records it in its state and sets its LifecycleState, so it is visible in
// the UI and to `starter status`.
func (a *Activities) RemindTemporaryAccess(ctx context.Context, in RemindInput) (RemindResult, error) {
	if !hr.ValidEmployeeID(in.EmployeeID) {
		return RemindResult{}, invalid("RemindTemporaryAccess", "employee ID %q is not E + 6 digits", in.EmployeeID)
	}
	msg := fmt.Sprintf("%s: your temporary access %s/%s ends at %s; ask for an extension if you still need it",
		in.EmployeeID, in.Application, in.Entitlement, in.ExpiresAt.UTC().Format(time.RFC3339))
	activity.GetLogger(ctx).Info("Temporary access reminder", "reminder", msg, "employeeId", in.EmployeeID)
	return RemindResult{Message: msg, Channel: RemindChannelLog}, nil
}

// CancelTemporaryAccessInput names the person whose temporary access ends.
type CancelTemporaryAccessInput struct {
	EmployeeID string `json:"employeeId"`
}

// CancelTemporaryAccessResult lists the runs asked to end.
type CancelTemporaryAccessResult struct {
	// WorkflowIDs are the running temporary-access workflows cancelled.
	WorkflowIDs []string `json:"workflowIds,omitempty"`
}

// temporalLister is the part of the Temporal client that
// CancelTemporaryAccess needs.
type temporalLister interface {
	ListWorkflow(ctx context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
	CancelWorkflow(ctx context.Context, workflowID, runID string) error
}

// CancelTemporaryAccess cancels every running temporary-access workflow of
// a person, found with one visibility query; each then revokes its grant
// (and any account it created) before it ends. A leaver calls it so no
// temporary grant outlives the person. Visibility lags by a moment, so a
// request started in the same second may be missed; the leaver's own
// sweep revokes its grant anyway.
func (a *Activities) CancelTemporaryAccess(ctx context.Context, in CancelTemporaryAccessInput) (CancelTemporaryAccessResult, error) {
	const op = "CancelTemporaryAccess"
	if !hr.ValidEmployeeID(in.EmployeeID) {
		return CancelTemporaryAccessResult{}, invalid(op, "employee ID %q is not E + 6 digits", in.EmployeeID)
	}
	c := activity.GetClient(ctx)
	if c == nil {
		return CancelTemporaryAccessResult{}, invalid(op, "no Temporal client: run this activity in a worker")
	}
	ids, err := cancelRuns(ctx, c, op, TemporaryAccessQuery(in.EmployeeID))
	return CancelTemporaryAccessResult{WorkflowIDs: ids}, err
}

// TemporaryAccessQuery is the visibility query for a person's running
// temporary-access workflows. employeeID must be validated: it goes into
// the query as is.
func TemporaryAccessQuery(employeeID string) string {
	return fmt.Sprintf("EmployeeId = '%s' AND LifecycleEvent = '%s' AND ExecutionStatus = 'Running'", employeeID, EventTemporaryAccess)
}

// EventTemporaryAccess is the LifecycleEvent of temporary-access runs
// (workflows.EventTemporaryAccess repeats it for the workflow side).
const EventTemporaryAccess = "temporary-access"

// cancelRuns cancels every running workflow the visibility query finds and
// returns their IDs.
func cancelRuns(ctx context.Context, c temporalLister, op, query string) ([]string, error) {
	var ids []string
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: query, NextPageToken: token,
		})
		if err != nil {
			return ids, classify("temporal", op, err)
		}
		for _, e := range resp.GetExecutions() {
			wfID := e.GetExecution().GetWorkflowId()
			// No run ID: a run that continued as new is cancelled in its
			// latest run. Cancelling a run that ended meanwhile fails
			// harmlessly.
			if err := c.CancelWorkflow(ctx, wfID, ""); err != nil && !isClosedError(err) {
				return ids, classify("temporal", op, err)
			}
			ids = append(ids, wfID)
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return ids, nil
		}
	}
}

// CancelRoleChangesInput names the person whose role changes end.
type CancelRoleChangesInput struct {
	EmployeeID string `json:"employeeId"`
}

// CancelRoleChangesResult lists the runs asked to end.
type CancelRoleChangesResult struct {
	// WorkflowIDs are the running mover workflows cancelled.
	WorkflowIDs []string `json:"workflowIds,omitempty"`
}

// EventMover is the LifecycleEvent of role-change runs
// (workflows.EventMover repeats it for the workflow side).
const EventMover = "mover"

// RoleChangesQuery is the visibility query for a person's running role
// changes. employeeID must be validated: it goes into the query as is.
func RoleChangesQuery(employeeID string) string {
	return fmt.Sprintf("EmployeeId = '%s' AND LifecycleEvent = '%s' AND ExecutionStatus = 'Running'", employeeID, EventMover)
}

// CancelRoleChanges cancels every running role change of a person, e.g. one
// still waiting for an approval, so a leaver wins over a mover as it does
// over a joiner: each cancelled mover undoes the grants it made.
func (a *Activities) CancelRoleChanges(ctx context.Context, in CancelRoleChangesInput) (CancelRoleChangesResult, error) {
	const op = "CancelRoleChanges"
	if !hr.ValidEmployeeID(in.EmployeeID) {
		return CancelRoleChangesResult{}, invalid(op, "employee ID %q is not E + 6 digits", in.EmployeeID)
	}
	c := activity.GetClient(ctx)
	if c == nil {
		return CancelRoleChangesResult{}, invalid(op, "no Temporal client: run this activity in a worker")
	}
	ids, err := cancelRuns(ctx, c, op, RoleChangesQuery(in.EmployeeID))
	return CancelRoleChangesResult{WorkflowIDs: ids}, err
}

// isClosedError reports whether the server refused a cancellation because
// the run has already closed.
func isClosedError(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}
