package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
)

const (
	day       = 24 * time.Hour
	testWFID  = "onboarding-E100001" // OnboardingID of testPerson, whatever ID the test run has
	reqID     = testWFID + "/scim/finance-admins"
	manager   = "E100008"
	managerUp = "E100007" // E100008's manager
	owner     = "E100088"
	stranger  = "E100042"
)

func step(kind, approver string) activities.ApprovalStep {
	return activities.ApprovalStep{Kind: kind, ApproverID: approver, EscalateAfter: 3 * day, ExpireAfter: 7 * day}
}

// approvalPlan gives birthright access in ldap and scim, and asks the
// manager, then the owner, for scim/finance-admins.
func approvalPlan(steps ...activities.ApprovalStep) activities.PlanAccessResult {
	if len(steps) == 0 {
		steps = []activities.ApprovalStep{step("manager", manager), step("owner", owner)}
	}
	return activities.PlanAccessResult{
		PolicyVersion: "v2",
		Applications: []activities.AppAccess{
			{Application: "ldap", Entitlements: []string{"all-staff"}},
			{Application: "scim", Entitlements: []string{"all-staff"}},
		},
		Approvals: []activities.ApprovalItem{{Application: "scim", Entitlement: "finance-admins", Steps: steps}},
	}
}

// updateOutcome is what the test environment reported for one update.
type updateOutcome struct {
	accepted bool
	rejected error
	result   DecideResult
	err      error
	done     bool
}

// updates sends decisions with unique update IDs and keeps their outcomes.
type updates struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment
	mu  sync.Mutex
	n   int
}

func (u *updates) send(in DecideInput) *updateOutcome {
	u.mu.Lock()
	u.n++
	id := fmt.Sprintf("decision-%d", u.n)
	u.mu.Unlock()
	o := &updateOutcome{}
	u.env.UpdateWorkflow(UpdateDecide, id, &testsuite.TestUpdateCallback{
		OnReject: func(err error) { o.rejected, o.done = err, true },
		OnAccept: func() { o.accepted = true },
		OnComplete: func(v any, err error) {
			o.done, o.err = true, err
			switch r := v.(type) {
			case DecideResult:
				o.result = r
			case converter.EncodedValue:
				require.NoError(u.t, r.Get(&o.result))
			}
		},
	}, in)
	return o
}

// at runs fn at start+d of the workflow clock.
func at(env *testsuite.TestWorkflowEnvironment, d time.Duration, fn func()) {
	env.RegisterDelayedCallback(fn, d)
}

func queryApprovals(t *testing.T, env *testsuite.TestWorkflowEnvironment) ApprovalsState {
	t.Helper()
	v, err := env.QueryWorkflow(QueryApprovals)
	require.NoError(t, err)
	var st ApprovalsState
	require.NoError(t, v.Get(&st))
	return st
}

func result(t *testing.T, env *testsuite.TestWorkflowEnvironment) OnboardingResult {
	t.Helper()
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res OnboardingResult
	require.NoError(t, env.GetWorkflowResult(&res))
	return res
}

func approve(id, approver string) DecideInput {
	return DecideInput{RequestID: id, ApproverID: approver, Approve: true}
}

func reject(id, approver, comment string) DecideInput {
	return DecideInput{RequestID: id, ApproverID: approver, Comment: comment}
}

// recordWaiting captures every WaitingApprovers value the run upserts.
func recordWaiting(env *testsuite.TestWorkflowEnvironment) func() [][]string {
	var mu sync.Mutex
	var seen [][]string
	env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		sa := args.Get(0).(temporal.SearchAttributes)
		if v, ok := sa.GetKeywordList(AttrWaitingApprovers); ok {
			mu.Lock()
			seen = append(seen, v)
			mu.Unlock()
		}
	}).Return(nil).Maybe()
	return func() [][]string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

func TestApprovalManagerThenOwnerInSequenceThenGrant(t *testing.T) {
	rec := &recorder{}
	env := newEnvWithPlan(t, rec, nil, approvalPlan())
	waiting := recordWaiting(env)
	u := &updates{t: t, env: env}
	var early, first, second *updateOutcome
	at(env, time.Hour, func() {
		st := queryApprovals(t, env)
		require.Len(t, st.Requests, 1)
		r := st.Requests[0]
		assert.Equal(t, reqID, r.ID)
		assert.Equal(t, RequestWaiting, r.State)
		assert.Equal(t, []string{manager}, st.WaitingApprovers)
		assert.Equal(t, testStart, r.Steps[0].StartedAt)
		assert.Equal(t, testStart.Add(3*day), r.Steps[0].EscalatesAt)
		assert.Equal(t, testStart.Add(7*day), r.Steps[0].ExpiresAt)
		assert.Equal(t, StepPending, r.Steps[1].State)
		// The owner is asked second: deciding first is refused.
		early = u.send(approve(reqID, owner))
	})
	at(env, 2*time.Hour, func() {
		first = u.send(DecideInput{RequestID: reqID, ApproverID: manager, Approve: true, Comment: "ok"})
	})
	at(env, 5*time.Hour, func() { second = u.send(approve(reqID, owner)) })
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})

	require.NotNil(t, early)
	require.Error(t, early.rejected)
	assert.Contains(t, early.rejected.Error(), "not waiting for "+owner+" yet")
	assert.False(t, early.accepted)

	require.True(t, first.accepted)
	require.NoError(t, first.err)
	r := first.result.Request
	assert.Equal(t, RequestWaiting, r.State, "the owner step is next")
	assert.Equal(t, 1, r.Step)
	assert.Equal(t, StepApproved, r.Steps[0].State)
	assert.Equal(t, manager, r.Steps[0].DecidedBy)
	assert.Equal(t, "ok", r.Steps[0].Comment)
	assert.Equal(t, testStart.Add(2*time.Hour), r.Steps[1].StartedAt, "the owner's clock starts with the owner's step")
	assert.Equal(t, testStart.Add(2*time.Hour+7*day), r.Steps[1].ExpiresAt)

	require.True(t, second.accepted)
	require.NoError(t, second.err)
	assert.Equal(t, RequestApproved, second.result.Request.State)

	res := result(t, env)
	require.Len(t, res.Approvals, 1)
	assert.Equal(t, RequestGranted, res.Approvals[0].State)
	assert.Equal(t, testStart.Add(5*time.Hour), res.Approvals[0].ClosedAt)
	assert.Equal(t, []AccountResult{
		{Application: "ldap", Username: "jose.munoz", Created: true, Entitlements: []string{"all-staff"}},
		{Application: "scim", Username: "jose.munoz", Created: true, Entitlements: []string{"all-staff", "finance-admins"}},
	}, res.Accounts)
	calls := rec.list()
	assert.Less(t, slices.Index(calls, "ensure scim"), slices.Index(calls, "grant scim/finance-admins"))
	assert.Equal(t, testStart.Add(5*time.Hour), rec.at["grant scim/finance-admins"], "granted as soon as the last approval came")
	assert.Equal(t, [][]string{{manager}, {owner}, nil}, waiting(), "WaitingApprovers follows the steps, then empties")
}

func TestApprovalRejectedIsNotGrantedAndRecordsWhoAndWhy(t *testing.T) {
	rec := &recorder{}
	env := newEnvWithPlan(t, rec, nil, approvalPlan())
	u := &updates{t: t, env: env}
	var rej, again *updateOutcome
	at(env, time.Hour, func() { rej = u.send(reject(reqID, manager, "not in this role yet")) })
	at(env, 2*time.Hour, func() { again = u.send(approve(reqID, manager)) })
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})

	require.True(t, rej.accepted)
	require.NoError(t, rej.err)
	assert.Equal(t, RequestRejected, rej.result.Request.State)

	res := result(t, env)
	require.Len(t, res.Approvals, 1)
	r := res.Approvals[0]
	assert.Equal(t, RequestRejected, r.State)
	assert.Equal(t, "rejected by "+manager+": not in this role yet", r.Reason)
	assert.Equal(t, StepRejected, r.Steps[0].State)
	assert.Equal(t, StepPending, r.Steps[1].State, "the owner is never asked")
	assert.NotContains(t, rec.list(), "grant scim/finance-admins")
	assert.Equal(t, []string{"all-staff"}, res.Accounts[1].Entitlements)
	// The run ended with the rejection: the later decision never arrived.
	assert.Nil(t, again)
}

func TestApprovalAlreadyDecidedIsRefused(t *testing.T) {
	// Two approval items: one decided, the other keeps the run alive so the
	// second decision reaches the workflow.
	plan := approvalPlan(step("manager", manager))
	plan.Approvals = append(plan.Approvals, activities.ApprovalItem{
		Application: "scim", Entitlement: "sales", Steps: []activities.ApprovalStep{step("manager", manager)},
	})
	rec := &recorder{}
	env := newEnvWithPlan(t, rec, nil, plan)
	u := &updates{t: t, env: env}
	var first, again *updateOutcome
	var before ApprovalsState
	at(env, time.Hour, func() { first = u.send(reject(reqID, manager, "")) })
	at(env, 2*time.Hour, func() {
		before = queryApprovals(t, env)
		again = u.send(approve(reqID, manager))
	})
	at(env, 3*time.Hour, func() {
		assert.Equal(t, before, queryApprovals(t, env), "a refused decision changes nothing")
		u.send(approve(testWFID+"/scim/sales", manager))
	})
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})

	require.True(t, first.accepted)
	require.Error(t, again.rejected)
	assert.False(t, again.accepted)
	assert.Contains(t, again.rejected.Error(), "already decided: rejected: rejected by "+manager)
	res := result(t, env)
	assert.Equal(t, RequestRejected, res.Approvals[0].State)
	assert.Equal(t, RequestGranted, res.Approvals[1].State)
}

func TestApprovalRefusesWrongApproversAndUnknownRequestsWithoutATrace(t *testing.T) {
	cases := []struct {
		name string
		in   DecideInput
		want string
	}{
		{"wrong approver", approve(reqID, stranger), stranger + " may not decide approval request " + reqID + ": step 1 of 2 (manager) waits for " + manager},
		{"escalation approver before escalation", approve(reqID, managerUp), "their manager may decide as well from 2026-11-28T09:00:00Z"},
		{"later step's approver", approve(reqID, owner), "not waiting for " + owner + " yet"},
		{"the person themselves", approve(reqID, "E100001"), "E100001 may not decide on their own access"},
		{"unknown request", approve(testWFID+"/scim/sales", manager), `unknown approval request "` + testWFID + `/scim/sales"`},
		{"malformed approver", approve(reqID, "boss"), `approver "boss" is not an employee ID`},
		{"no request ID", approve("", manager), "the request ID is required"},
		{"comment too long", DecideInput{RequestID: reqID, ApproverID: manager, Comment: strings.Repeat("x", MaxCommentLen+1)}, "at most 1000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			env := newEnvWithPlan(t, rec, nil, approvalPlan())
			u := &updates{t: t, env: env}
			var got *updateOutcome
			var before, after ApprovalsState
			at(env, time.Hour, func() {
				before = queryApprovals(t, env)
				got = u.send(tc.in)
			})
			at(env, 2*time.Hour, func() {
				after = queryApprovals(t, env)
				env.CancelWorkflow()
			})
			env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})
			require.NotNil(t, got)
			require.Error(t, got.rejected)
			assert.False(t, got.accepted, "a refused decision is never accepted, so it leaves no history")
			assert.Contains(t, got.rejected.Error(), tc.want)
			assert.Equal(t, before, after, "nothing changed")
		})
	}
}

func TestApprovalEscalatesToTheApproversManagerAtEscalateAfter(t *testing.T) {
	rec := &recorder{}
	env := newEnvWithPlan(t, rec, nil, approvalPlan())
	waiting := recordWaiting(env)
	u := &updates{t: t, env: env}
	var tooEarly, escalated *updateOutcome
	var atEscalation ApprovalsState
	at(env, 3*day-time.Second, func() { tooEarly = u.send(approve(reqID, managerUp)) })
	at(env, 3*day+time.Second, func() { atEscalation = queryApprovals(t, env) })
	at(env, 3*day+time.Minute, func() { escalated = u.send(approve(reqID, managerUp)) })
	at(env, 3*day+time.Hour, func() { u.send(approve(reqID, owner)) })
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})

	require.Error(t, tooEarly.rejected, "before EscalateAfter only the approver may decide")
	assert.Contains(t, tooEarly.rejected.Error(), managerUp+" may not decide")

	s := atEscalation.Requests[0].Steps[0]
	assert.Equal(t, testStart.Add(3*day), s.EscalatedAt, "escalated exactly at EscalateAfter")
	assert.Equal(t, managerUp, s.EscalationApproverID)
	assert.Equal(t, []string{managerUp, manager}, atEscalation.WaitingApprovers, "both may decide now, sorted")

	require.True(t, escalated.accepted)
	require.NoError(t, escalated.err)
	assert.Equal(t, managerUp, escalated.result.Request.Steps[0].DecidedBy)
	assert.Contains(t, escalated.result.Request.Steps[0].Note, "decided by the escalation approver")

	res := result(t, env)
	assert.Equal(t, RequestGranted, res.Approvals[0].State)
	assert.Equal(t, [][]string{{manager}, {managerUp, manager}, {owner}, nil}, waiting())
}

func TestApprovalWithNobodyAboveKeepsTheApproverAndSaysSo(t *testing.T) {
	rec := &recorder{}
	env := newEnvWithPlan(t, rec, nil, approvalPlan(step("manager", managerUp)))
	u := &updates{t: t, env: env}
	var st ApprovalsState
	at(env, 4*day, func() {
		st = queryApprovals(t, env)
		u.send(approve(reqID, managerUp))
	})
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})

	s := st.Requests[0].Steps[0]
	assert.Equal(t, testStart.Add(3*day), s.EscalatedAt)
	assert.Empty(t, s.EscalationApproverID)
	assert.Contains(t, s.Note, "nobody is above "+managerUp+" in HR; only "+managerUp+" can decide")
	assert.Equal(t, []string{managerUp}, st.WaitingApprovers)
	assert.Equal(t, RequestGranted, result(t, env).Approvals[0].State)
}

func TestApprovalExpiresAsRejectionExactlyAtExpireAfter(t *testing.T) {
	rec := &recorder{}
	env := newEnvWithPlan(t, rec, nil, approvalPlan())
	u := &updates{t: t, env: env}
	var late *updateOutcome
	at(env, 7*day-time.Second, func() {
		assert.Equal(t, RequestWaiting, queryApprovals(t, env).Requests[0].State, "still open a second before")
	})
	at(env, 7*day+time.Second, func() { late = u.send(approve(reqID, manager)) })
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})

	res := result(t, env)
	r := res.Approvals[0]
	assert.Equal(t, RequestRejected, r.State)
	assert.Equal(t, "expired: nobody decided step 1 of 2 (manager) within 7d", r.Reason)
	assert.Equal(t, StepExpired, r.Steps[0].State)
	assert.Equal(t, testStart.Add(7*day), r.Steps[0].DecidedAt, "expired exactly at ExpireAfter")
	assert.Equal(t, testStart.Add(7*day), r.ClosedAt)
	assert.Equal(t, 7*day, env.Now().Sub(testStart), "the run ends with the expiry")
	assert.NotContains(t, rec.list(), "grant scim/finance-admins")
	assert.Nil(t, late, "the run had ended")
}

func TestApprovalUnresolvedStepIsRejectedAtOnce(t *testing.T) {
	unresolved := activities.ApprovalStep{Kind: "owner", EscalateAfter: 3 * day, ExpireAfter: 7 * day, Unresolved: true,
		Fallback: "the approver would be the person themselves and no fallback_approver can stand in: reject the request"}
	rec := &recorder{}
	env := newEnvWithPlan(t, rec, nil, approvalPlan(unresolved))
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})
	res := result(t, env)
	r := res.Approvals[0]
	assert.Equal(t, RequestRejected, r.State)
	assert.Contains(t, r.Reason, "nobody may approve: the approver would be the person themselves")
	assert.Equal(t, time.Duration(0), env.Now().Sub(testStart), "nobody is waited for")
}

func TestBirthrightAccessGoesAheadWhileApprovalWaits(t *testing.T) {
	rec := &recorder{}
	env := newEnvWithPlan(t, rec, nil, approvalPlan())
	u := &updates{t: t, env: env}
	var st OnboardingState
	var callsBefore []string
	at(env, 2*day, func() {
		v, err := env.QueryWorkflow(QueryState)
		require.NoError(t, err)
		require.NoError(t, v.Get(&st))
		callsBefore = rec.list()
		u.send(reject(reqID, manager, ""))
	})
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})

	assert.Equal(t, StateWaitingApproval, st.State)
	assert.Equal(t, []string{manager}, st.WaitingApprovers)
	assert.Equal(t, []AccountResult{
		{Application: "ldap", Username: "jose.munoz", Created: true, Entitlements: []string{"all-staff"}},
		{Application: "scim", Username: "jose.munoz", Created: true, Entitlements: []string{"all-staff"}},
	}, st.Accounts)
	assert.ElementsMatch(t, []string{"ensure ldap", "grant ldap/all-staff", "ensure scim", "grant scim/all-staff"}, callsBefore)
	for _, c := range []string{"ensure ldap", "grant ldap/all-staff", "ensure scim", "grant scim/all-staff"} {
		assert.Equal(t, testStart, rec.at[c], "%s did not wait for the approval", c)
	}
	assert.Equal(t, RequestRejected, result(t, env).Approvals[0].State)
}

func TestApprovalForAnApplicationWithoutBirthrightAccessCreatesTheAccountOnApproval(t *testing.T) {
	plan := approvalPlan()
	plan.Approvals = []activities.ApprovalItem{{Application: "postgres", Entitlement: "billing_write",
		Steps: []activities.ApprovalStep{step("manager", manager)}}}
	id := testWFID + "/postgres/billing_write"
	start := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC) // start dates are whole days
	rec := &recorder{}
	env := newEnvWithPlan(t, rec, nil, plan)
	u := &updates{t: t, env: env}
	at(env, day, func() { u.send(approve(id, manager)) })
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(start)})

	res := result(t, env)
	assert.Equal(t, RequestGranted, res.Approvals[0].State)
	require.Len(t, res.Accounts, 3)
	assert.Equal(t, AccountResult{Application: "postgres", Username: "jose.munoz", Created: true, Entitlements: []string{"billing_write"}}, res.Accounts[2])
	calls := rec.list()
	assert.NotContains(t, calls, "ensure postgres", "no account before the approval")
	assert.Equal(t, testStart.Add(day), rec.at["ensure postgres disabled"], "created on approval, disabled before the start date")
	assert.Equal(t, start, rec.at["enable postgres"], "and enabled on the start date with the others")
	assert.Less(t, slices.Index(calls, "ensure postgres disabled"), slices.Index(calls, "grant postgres/billing_write"))
}

func TestApprovalThenGrantFailureCompensatesEverything(t *testing.T) {
	permanent := temporal.NewApplicationError("scim GrantEntitlement: PermissionDenied: token may not change groups", string(connectors.KindPermission))
	rec := &recorder{}
	env := newEnvWithPlan(t, rec, func(call string) error {
		if call == "grant scim/finance-admins" {
			return permanent
		}
		return nil
	}, approvalPlan(step("owner", owner)))
	u := &updates{t: t, env: env}
	at(env, time.Hour, func() { u.send(approve(reqID, owner)) })
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})

	require.True(t, env.IsWorkflowCompleted())
	err := env.GetWorkflowError()
	require.Error(t, err)
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae))
	assert.Equal(t, "OnboardingFailed", ae.Type())
	assert.Contains(t, ae.Error(), "scim: grant finance-admins (approved): scim GrantEntitlement: PermissionDenied")

	calls := rec.list()
	var undone []string
	for _, c := range calls {
		if strings.HasPrefix(c, "revoke") || strings.HasPrefix(c, "delete") {
			undone = append(undone, c)
		}
	}
	assert.ElementsMatch(t, []string{
		"revoke scim/finance-admins", "revoke scim/all-staff", "delete scim",
		"revoke ldap/all-staff", "delete ldap",
	}, undone)
	assert.Less(t, slices.Index(calls, "revoke scim/finance-admins"), slices.Index(calls, "revoke scim/all-staff"), "undo in reverse order")
	assert.Less(t, slices.Index(calls, "revoke scim/all-staff"), slices.Index(calls, "delete scim"))

	st := queryApprovals(t, env)
	assert.Equal(t, RequestFailed, st.Requests[0].State)
	assert.Contains(t, st.Requests[0].Reason, "approved, but granting failed")
	assert.Empty(t, st.WaitingApprovers)
}

func TestOnboardingFailureCancelsOpenApprovalRequests(t *testing.T) {
	permanent := temporal.NewApplicationError("ldap EnsureAccount: PermissionDenied", string(connectors.KindPermission))
	rec := &recorder{}
	env := newEnvWithPlan(t, rec, func(call string) error {
		if call == "ensure ldap" {
			return permanent
		}
		return nil
	}, approvalPlan())
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})
	require.Error(t, env.GetWorkflowError())
	st := queryApprovals(t, env)
	assert.Equal(t, RequestCancelled, st.Requests[0].State)
	assert.Equal(t, "the onboarding failed before this access was granted", st.Requests[0].Reason)
	assert.Empty(t, st.WaitingApprovers, "nobody is asked for a run that undid itself")
	assert.Equal(t, time.Duration(0), env.Now().Sub(testStart), "the run did not wait for the approval")
}

func TestOnboardingCancelledWhileWaitingForApprovalRemovesEverything(t *testing.T) {
	rec := &recorder{}
	env := newEnvWithPlan(t, rec, nil, approvalPlan())
	at(env, day, env.CancelWorkflow)
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})
	require.True(t, temporal.IsCanceledError(env.GetWorkflowError()), "got %v", env.GetWorkflowError())
	assert.Subset(t, rec.list(), []string{"revoke ldap/all-staff", "delete ldap", "revoke scim/all-staff", "delete scim"})
	st := queryApprovals(t, env)
	assert.Equal(t, RequestCancelled, st.Requests[0].State)
	assert.Contains(t, st.Requests[0].Reason, "cancelled")
}

func TestApprovalRequestIDRoundTrips(t *testing.T) {
	id := ApprovalRequestID(OnboardingID("E100091"), "scim", "finance-admins")
	assert.Equal(t, "onboarding-E100091/scim/finance-admins", id)
	wf, app, ent, err := ParseApprovalRequestID(id)
	require.NoError(t, err)
	assert.Equal(t, []string{"onboarding-E100091", "scim", "finance-admins"}, []string{wf, app, ent})

	for _, bad := range []string{"", "onboarding-E100091", "a/b", "a/b/c/d", "a//c", "a/b c/d", "a/b/c'"} {
		_, _, _, err := ParseApprovalRequestID(bad)
		assert.Error(t, err, "%q", bad)
	}
}

func TestValidateBeforeThePlanExists(t *testing.T) {
	b := &approvalBook{workflowID: "onboarding-E100001", employeeID: "E100001"}
	err := b.validate(approve("onboarding-E100001/scim/finance-admins", manager))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "has not planned its access yet")
}
