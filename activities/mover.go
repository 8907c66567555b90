package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/policy"
)

// GrantRef names one entitlement of one application.
type GrantRef struct {
	Application string `json:"application"`
	Entitlement string `json:"entitlement"`
}

func (r GrantRef) String() string { return r.Application + "/" + r.Entitlement }

// DiffAccessInput is a mover's new HR record and what they hold now.
type DiffAccessInput struct {
	Person hr.Person `json:"person"`
	// Accounts are the person's accounts as FindAccounts read them; only
	// those that exist and are the person's own count.
	Accounts []FoundAccount `json:"accounts"`
	// Temporary are the grants a temporary-access run holds for the
	// person: they are never revoked here, only by their own expiry.
	Temporary []GrantRef `json:"temporary,omitempty"`
}

// DiffAccessResult is what moves a person from what they hold to what
// their new attributes justify, under one policy version.
type DiffAccessResult struct {
	PolicyVersion string `json:"policyVersion"`
	// Grant is planned access not held yet that needs no human step, per
	// application, sorted.
	Grant []AppAccess `json:"grant,omitempty"`
	// Approvals is planned access not held yet that is granted only once
	// its approval steps pass.
	Approvals []ApprovalItem `json:"approvals,omitempty"`
	// Deferred is planned access not held that only a temporary-access
	// request can give.
	Deferred []DeferredAccess `json:"deferred,omitempty"`
	// Revoke is held permanent access the new plan no longer justifies.
	Revoke []AppAccess `json:"revoke,omitempty"`
	// Keep is planned access already held.
	Keep []GrantRef `json:"keep,omitempty"`
	// Expiring are held temporary grants the plan does not give: kept
	// until their own expiry.
	Expiring []GrantRef `json:"expiring,omitempty"`
	// Unmanaged are held entitlements the policy does not declare; never
	// touched.
	Unmanaged []GrantRef `json:"unmanaged,omitempty"`
	// Blocked explains block separation-of-duties conflicts the new access
	// would create together with what is kept; the move must not go ahead.
	Blocked []string `json:"blocked,omitempty"`
	// Reasons explains each planned entitlement ("app/entitlement" -> the
	// rules and roles behind it), for the audit trail.
	Reasons map[string][]string `json:"reasons,omitempty"`
}

// DiffAccess plans the person's access from their new attributes and
// compares it with what they hold (policy Diff), all under one snapshot of
// the policy in force. Running it as an activity records the plan, the
// diff and the policy version in the history.
func (a *Activities) DiffAccess(_ context.Context, in DiffAccessInput) (DiffAccessResult, error) {
	const op = "DiffAccess"
	if err := in.Person.Validate(); err != nil {
		return DiffAccessResult{}, invalid(op, "%v", err)
	}
	if a.Policy == nil || a.Policy.Current() == nil {
		return DiffAccessResult{}, invalid(op, "this worker has no policy loaded")
	}
	res, err := diffAccess(a.Policy.Current(), in)
	if err != nil {
		return DiffAccessResult{}, classify("policy", op, err)
	}
	for _, app := range res.Grant {
		if _, err := a.connector(app.Application, op); err != nil {
			return DiffAccessResult{}, invalid(op, "policy plans access in application %q, which this worker has no connector for", app.Application)
		}
	}
	return res, nil
}

// diffAccess is DiffAccess without the worker: pure, so it is tested on
// its own.
func diffAccess(p *policy.Policy, in DiffAccessInput) (DiffAccessResult, error) {
	plan, err := p.Plan(in.Person)
	if err != nil {
		return DiffAccessResult{}, err
	}
	temporary := map[policy.Ref]bool{}
	for _, t := range in.Temporary {
		temporary[policy.Ref{Application: t.Application, Entitlement: t.Entitlement}] = true
	}
	var held []policy.Held
	for _, acct := range in.Accounts {
		if !acct.Exists || acct.Foreign {
			continue
		}
		for _, ent := range acct.Entitlements {
			r := policy.Ref{Application: acct.Application, Entitlement: ent}
			// An entitlement the policy only grants time-boxed is
			// temporary even when no temporary-access run was found for
			// it (visibility lags): never revoke it as a mover.
			e := p.Entitlement(r)
			tmp := temporary[r] || (e != nil && e.Temporary.Only)
			held = append(held, policy.Held{Application: r.Application, Entitlement: r.Entitlement, Temporary: tmp})
		}
	}
	ch := p.Diff(held, plan)
	res := DiffAccessResult{PolicyVersion: plan.PolicyVersion, Reasons: map[string][]string{}}
	for _, it := range ch.Grant {
		switch {
		case it.Temporary:
			res.Deferred = append(res.Deferred, DeferredAccess{
				Application: it.Application, Entitlement: it.Entitlement, Reason: "temporary access only: request it"})
			continue
		case len(it.Approvals) > 0:
			res.Approvals = append(res.Approvals, ApprovalItem{
				Application: it.Application, Entitlement: it.Entitlement, Steps: approvalStepsOf(it.Approvals)})
		default:
			res.Grant = appendAccess(res.Grant, it.Application, it.Entitlement)
		}
		res.Reasons[it.Ref().String()] = reasonsOf(it)
	}
	for _, it := range ch.Keep {
		res.Keep = append(res.Keep, GrantRef{Application: it.Application, Entitlement: it.Entitlement})
		res.Reasons[it.Ref().String()] = reasonsOf(it)
	}
	for _, h := range ch.Revoke {
		res.Revoke = appendAccess(res.Revoke, h.Application, h.Entitlement)
	}
	for _, h := range ch.Expiring {
		res.Expiring = append(res.Expiring, GrantRef{Application: h.Application, Entitlement: h.Entitlement})
	}
	for _, h := range ch.Unmanaged {
		res.Unmanaged = append(res.Unmanaged, GrantRef{Application: h.Application, Entitlement: h.Entitlement})
	}

	// Separation of duties: the new plan together with what stays held
	// (kept, expiring temporary and unmanaged grants; revoked ones go).
	revoked := map[policy.Ref]bool{}
	for _, h := range ch.Revoke {
		revoked[h.Ref()] = true
	}
	var staying []policy.Held
	for _, h := range held {
		if !revoked[h.Ref()] {
			staying = append(staying, h)
		}
	}
	for _, c := range p.CheckSoD(plan, staying) {
		if c.Action != policy.SoDBlock {
			continue
		}
		refs := make([]string, len(c.Entitlements))
		for i, r := range c.Entitlements {
			refs[i] = r.String()
		}
		res.Blocked = append(res.Blocked, fmt.Sprintf("separation of duties %q forbids holding %s together", c.SoD, strings.Join(refs, " and ")))
	}
	return res, nil
}

// appendAccess adds one entitlement to a per-application list kept in
// the order the items come (sorted by application, then entitlement).
func appendAccess(list []AppAccess, app, ent string) []AppAccess {
	n := len(list)
	if n == 0 || list[n-1].Application != app {
		list = append(list, AppAccess{Application: app})
		n++
	}
	list[n-1].Entitlements = append(list[n-1].Entitlements, ent)
	return list
}

func reasonsOf(it policy.Item) []string {
	why := make([]string, len(it.Reasons))
	for i, r := range it.Reasons {
		why[i] = r.String()
	}
	return why
}

// approvalStepsOf mirrors policy approval steps for the workflow, like the
// onboarding planner does (internal/app cannot be imported from here).
func approvalStepsOf(steps []policy.ApprovalStep) []ApprovalStep {
	out := make([]ApprovalStep, len(steps))
	for i, s := range steps {
		out[i] = ApprovalStep{
			Kind: string(s.Kind), ApproverID: s.ApproverID, EscalateAfter: s.EscalateAfter, ExpireAfter: s.ExpireAfter,
			Fallback: s.Fallback, Unresolved: s.Unresolved,
		}
	}
	return out
}

// WorkflowStatusInput names a workflow whose latest run is wanted.
type WorkflowStatusInput struct {
	WorkflowID string `json:"workflowId"`
	// StateAttribute is the keyword search attribute holding the run's
	// lifecycle state, read into the result's State.
	StateAttribute string `json:"stateAttribute,omitempty"`
}

// WorkflowStatusResult is how the latest run of a workflow stands.
type WorkflowStatusResult struct {
	// Found is false when no run with this ID exists.
	Found bool `json:"found"`
	// Status is the run's status in lower case (running, completed,
	// canceled, ...).
	Status string `json:"status,omitempty"`
	// State is the value of StateAttribute, if the run has one.
	State string `json:"state,omitempty"`
}

// WorkflowStatus reports how the latest run of a workflow stands, without
// waiting for it. The mover uses it to refuse a person whose offboarding
// runs or ran (a leaver wins).
func (a *Activities) WorkflowStatus(ctx context.Context, in WorkflowStatusInput) (WorkflowStatusResult, error) {
	const op = "WorkflowStatus"
	if in.WorkflowID == "" {
		return WorkflowStatusResult{}, invalid(op, "workflow ID is empty")
	}
	c := activity.GetClient(ctx)
	if c == nil {
		return WorkflowStatusResult{}, invalid(op, "no Temporal client: run this activity in a worker")
	}
	desc, err := c.DescribeWorkflow(ctx, in.WorkflowID, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return WorkflowStatusResult{}, nil
	case err != nil:
		return WorkflowStatusResult{}, classify("temporal", op, err)
	}
	res := WorkflowStatusResult{Found: true, Status: statusName(desc.Status)}
	if in.StateAttribute != "" && desc.TypedSearchAttributes.Size() > 0 {
		res.State, _ = desc.TypedSearchAttributes.GetKeyword(temporal.NewSearchAttributeKeyKeyword(in.StateAttribute))
	}
	return res, nil
}

// OpenRunsInput is a visibility query for runs, and which of them to keep.
type OpenRunsInput struct {
	// Query is a visibility query built by the workflow from its typed
	// search attributes, e.g. EmployeeId = 'E100001' AND LifecycleEvent =
	// 'mover' AND ExecutionStatus = 'Running'.
	Query string `json:"query"`
	// StartedBefore keeps only runs started earlier; zero keeps all.
	StartedBefore time.Time `json:"startedBefore,omitzero"`
	// Exclude drops runs of this workflow ID (the caller itself).
	Exclude string `json:"exclude,omitempty"`
}

// OpenRun is one run a visibility query found.
type OpenRun struct {
	WorkflowID string    `json:"workflowId"`
	RunID      string    `json:"runId"`
	StartTime  time.Time `json:"startTime"`
}

// OpenRunsResult are the runs found, oldest first.
type OpenRunsResult struct {
	Runs []OpenRun `json:"runs,omitempty"`
}

// maxOpenRuns bounds the runs OpenRuns reads: one person never has more
// lifecycle runs open than this, and an unbounded answer must not flood the
// history.
const maxOpenRuns = 200

// OpenRuns lists runs matching a visibility query. Visibility is
// eventually consistent: a run started a moment ago may be missing.
func (a *Activities) OpenRuns(ctx context.Context, in OpenRunsInput) (OpenRunsResult, error) {
	const op = "OpenRuns"
	if in.Query == "" {
		return OpenRunsResult{}, invalid(op, "query is empty")
	}
	c := activity.GetClient(ctx)
	if c == nil {
		return OpenRunsResult{}, invalid(op, "no Temporal client: run this activity in a worker")
	}
	var res OpenRunsResult
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: in.Query, NextPageToken: token})
		if err != nil {
			return OpenRunsResult{}, classify("temporal", op, err)
		}
		for _, e := range resp.GetExecutions() {
			r := OpenRun{WorkflowID: e.GetExecution().GetWorkflowId(), RunID: e.GetExecution().GetRunId(), StartTime: e.GetStartTime().AsTime().UTC()}
			if r.WorkflowID == in.Exclude || (!in.StartedBefore.IsZero() && !r.StartTime.Before(in.StartedBefore)) {
				continue
			}
			res.Runs = append(res.Runs, r)
		}
		if token = resp.GetNextPageToken(); len(token) == 0 || len(res.Runs) >= maxOpenRuns {
			break
		}
	}
	slices.SortFunc(res.Runs, func(x, y OpenRun) int {
		if c := x.StartTime.Compare(y.StartTime); c != 0 {
			return c
		}
		return strings.Compare(x.WorkflowID, y.WorkflowID)
	})
	return res, nil
}

// TemporaryGrantsInput finds the temporary grants of a person: the runs a
// visibility query finds, and the query each answers with its grant.
type TemporaryGrantsInput struct {
	// Query selects the person's running temporary-access runs.
	Query string `json:"query"`
	// StateQuery is the query name every such run answers with a JSON
	// object carrying "application" and "entitlement".
	StateQuery string `json:"stateQuery"`
}

// TemporaryGrantsResult are the grants found, sorted.
type TemporaryGrantsResult struct {
	Grants []GrantRef `json:"grants,omitempty"`
}

// TemporaryGrants lists what the person's running temporary-access runs
// hold. A run that does not answer fails the call (it is retried): a
// mover must not revoke what may be a temporary grant.
func (a *Activities) TemporaryGrants(ctx context.Context, in TemporaryGrantsInput) (TemporaryGrantsResult, error) {
	const op = "TemporaryGrants"
	if in.StateQuery == "" {
		return TemporaryGrantsResult{}, invalid(op, "state query name is empty")
	}
	runs, err := a.OpenRuns(ctx, OpenRunsInput{Query: in.Query})
	if err != nil {
		return TemporaryGrantsResult{}, err
	}
	c := activity.GetClient(ctx)
	var res TemporaryGrantsResult
	for _, r := range runs.Runs {
		v, err := c.QueryWorkflow(ctx, r.WorkflowID, r.RunID, in.StateQuery)
		var raw json.RawMessage
		if err == nil {
			err = v.Get(&raw)
		}
		if err != nil {
			return TemporaryGrantsResult{}, classify("temporal", op,
				fmt.Errorf("cannot read the grant of temporary-access run %s: %w", r.WorkflowID, err))
		}
		g, err := grantOf(raw)
		if err != nil {
			return TemporaryGrantsResult{}, invalid(op, "temporary-access run %s: %v", r.WorkflowID, err)
		}
		res.Grants = append(res.Grants, g)
	}
	slices.SortFunc(res.Grants, func(x, y GrantRef) int { return strings.Compare(x.String(), y.String()) })
	res.Grants = slices.Compact(res.Grants)
	return res, nil
}

// grantOf reads the application and entitlement out of a temporary-access
// run's state.
func grantOf(raw json.RawMessage) (GrantRef, error) {
	var g GrantRef
	if err := json.Unmarshal(raw, &g); err != nil {
		return GrantRef{}, fmt.Errorf("state is not a JSON object: %w", err)
	}
	if g.Application == "" || g.Entitlement == "" {
		return GrantRef{}, fmt.Errorf("state names no application and entitlement")
	}
	return g, nil
}
