package workflows

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/policy"
)

// audit keeps the ledger audit a change call received and, like the real
// activity, refuses the call (non-retryable) when the ledger could not
// record it. Every workflow test's change mocks go through it, so every
// change of every tested path must carry a complete audit.
func (r *recorder) audit(call string, au activities.Audit) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.audits == nil {
		r.audits = map[string][]activities.Audit{}
	}
	r.audits[call] = append(r.audits[call], au)
	e := ledger.Entry{
		EmployeeID: au.EmployeeID, Application: "app", Account: "user", Action: ledger.ActionDeleted,
		Justification: au.Justification, PolicyVersion: au.PolicyVersion, WorkflowID: "wf", RunID: "run", ActivityID: "1",
	}
	if err := e.Validate(); err != nil {
		return temporal.NewNonRetryableApplicationError(call+": audit: "+err.Error(), string(connectors.KindInvalid), nil)
	}
	return nil
}

// lastAudit is the audit of the last call named call.
func (r *recorder) lastAudit(t *testing.T, call string) activities.Audit {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	list := r.audits[call]
	require.NotEmpty(t, list, "no call %q", call)
	return list[len(list)-1]
}

func TestOnboardingAuditCarriesRulesAndPolicy(t *testing.T) {
	plan := testPlan
	plan.Reasons = map[string][]string{
		"ldap/all-staff":          {"rule everyone"},
		"ldap/engineering":        {"rule engineers -> role developer", "rule everyone"},
		"postgres/analytics_read": {"rule engineers -> role developer"},
	}
	rec := &recorder{}
	env := newEnvWithPlan(t, rec, nil, plan)
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})
	require.NoError(t, env.GetWorkflowError())

	joiner := func(rules ...string) activities.Audit {
		return activities.Audit{EmployeeID: "E100001", PolicyVersion: "v1",
			Justification: ledger.Justification{Event: ledger.EventJoiner, Rules: rules}}
	}
	assert.Equal(t, joiner("rule engineers -> role developer"), rec.lastAudit(t, "grant postgres/analytics_read"))
	assert.Equal(t, joiner("rule engineers -> role developer", "rule everyone"), rec.lastAudit(t, "grant ldap/engineering"))
	assert.Equal(t, joiner("rule engineers -> role developer", "rule everyone"), rec.lastAudit(t, "ensure ldap"),
		"the account is there for every rule of its entitlements")
}

func TestOnboardingAuditOfAnApprovedGrantNamesTheApproval(t *testing.T) {
	rec := &recorder{}
	env := newEnvWithPlan(t, rec, nil, approvalPlan())
	u := &updates{t: t, env: env}
	at(env, time.Hour, func() { u.send(approve(reqID, manager)) })
	at(env, 3*time.Hour, func() { u.send(approve(reqID, owner)) })
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})
	result(t, env)

	au := rec.lastAudit(t, "grant scim/finance-admins")
	assert.Equal(t, ledger.EventJoiner, au.Event)
	assert.Equal(t, "v2", au.PolicyVersion)
	assert.Equal(t, reqID, au.ApprovalID)
	assert.Equal(t, owner, au.Approver, "the last step's approver completed the approval")
	assert.Equal(t, testStart.Add(3*time.Hour), au.ApprovedAt)
	assert.Equal(t, "approved by manager "+manager+", owner "+owner, au.Note)

	birthright := rec.lastAudit(t, "grant scim/all-staff")
	assert.Empty(t, birthright.ApprovalID)
	assert.Empty(t, birthright.Approver)
}

func TestCompensationAuditSaysWhatFailed(t *testing.T) {
	rec := &recorder{}
	env := newEnv(t, rec, func(call string) error {
		if call == "grant postgres/analytics_read" {
			return temporal.NewNonRetryableApplicationError("role analytics_read does not exist", string(connectors.KindNotFound), nil)
		}
		return nil
	})
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart)})
	require.Error(t, env.GetWorkflowError())

	for _, call := range []string{"revoke ldap/engineering", "delete ldap", "delete postgres"} {
		au := rec.lastAudit(t, call)
		assert.Equal(t, ledger.EventCompensation, au.Event, call)
		assert.Equal(t, "E100001", au.EmployeeID, call)
		assert.Equal(t, "v1", au.PolicyVersion, call)
		assert.Contains(t, au.Note, "the onboarding failed: ", call)
		assert.Contains(t, au.Note, "role analytics_read does not exist", call)
		assert.Empty(t, au.Rules, call)
	}
}

func TestCompensationAuditOfACancelledRun(t *testing.T) {
	rec := &recorder{}
	env := newEnv(t, rec, nil)
	env.RegisterDelayedCallback(env.CancelWorkflow, 24*time.Hour)
	env.ExecuteWorkflow(Onboarding, OnboardingInput{Person: testPerson(testStart.Add(30 * 24 * time.Hour))})
	require.Error(t, env.GetWorkflowError())
	au := rec.lastAudit(t, "delete ldap")
	assert.Equal(t, ledger.EventCompensation, au.Event)
	assert.Equal(t, "the onboarding was cancelled", au.Note)
}

func TestMoverAudit(t *testing.T) {
	w, rec := newMoverWorld(), &recorder{}
	w.diff.Reasons = map[string][]string{"scim/sales": {"rule sales"}}
	env := newMoverEnv(t, w, rec, nil)
	env.ExecuteWorkflow(Mover, moverInput())
	moverResult(t, env)

	grant := rec.lastAudit(t, "grant scim/sales")
	assert.Equal(t, activities.Audit{EmployeeID: "E100001", PolicyVersion: "v3",
		Justification: ledger.Justification{Event: ledger.EventMover, Rules: []string{"rule sales"}}}, grant)
	revoke := rec.lastAudit(t, "revoke ldap/engineering")
	assert.Equal(t, ledger.EventMover, revoke.Event)
	assert.Equal(t, "v3", revoke.PolicyVersion)
	assert.Contains(t, revoke.Note, "no longer justified")
	assert.Equal(t, ledger.EventMover, rec.lastAudit(t, "ensure scim").Event)
}

func TestOffboardingAuditIsTheLeaverWithHRsReason(t *testing.T) {
	w := newWorld()
	env := newLeaverEnv(t, w, nil)
	env.ExecuteWorkflow(Offboarding, OffboardingInput{EmployeeID: leaverID, Reason: "resigned"})
	env.result(t)
	want := activities.Audit{EmployeeID: leaverID, Justification: ledger.Justification{Event: ledger.EventLeaver, Note: "resigned"}}
	// Each revocation carries when the run first asked for it, for the
	// ledger's requested-to-verified time.
	for call, requested := range map[string]time.Time{
		"disable ldap":            testStart,
		"revoke ldap/engineering": testStart,
		"delete postgres":         testStart.Add(30 * policy.Day),
	} {
		want.RequestedAt = requested
		assert.Equal(t, want, env.rec.lastAudit(t, call), call)
	}
}

func TestTemporaryAccessAudit(t *testing.T) {
	t.Run("grant and expiry", func(t *testing.T) {
		env := newTempEnv(t, always(tempPlan()), nil)
		in := tempInput()
		in.RequestedBy = manager
		env.ExecuteWorkflow(TemporaryAccess, in)
		env.result(t)
		assert.Equal(t, activities.Audit{EmployeeID: holder, PolicyVersion: "v1", Justification: ledger.Justification{
			Event: ledger.EventTemporary, Note: "requested by " + manager + "; incident 42"}}, env.rec.lastAudit(t, "grant"))
		revoke := env.rec.lastAudit(t, "revoke")
		assert.Equal(t, ledger.EventTemporary, revoke.Event)
		assert.Equal(t, "expired", revoke.Note)
	})
	t.Run("approved grant and early revoke", func(t *testing.T) {
		env := newTempEnv(t, always(tempPlan(step("manager", manager))), nil)
		u := &updates{t: t, env: env.TestWorkflowEnvironment}
		at(env.TestWorkflowEnvironment, time.Hour, func() { u.send(approve(tempReqID, manager)) })
		at(env.TestWorkflowEnvironment, 5*day, func() {
			env.sendUpdate(UpdateRevoke, "r1", nil, RevokeInput{RequestedBy: owner, Reason: "incident closed"})
		})
		env.ExecuteWorkflow(TemporaryAccess, tempInput())
		env.result(t)
		grant := env.rec.lastAudit(t, "grant")
		assert.Equal(t, tempReqID, grant.ApprovalID)
		assert.Equal(t, manager, grant.Approver)
		assert.Equal(t, testStart.Add(time.Hour), grant.ApprovedAt)
		assert.Equal(t, "incident 42", grant.Note)
		assert.Equal(t, "revoked by "+owner+"; incident closed", env.rec.lastAudit(t, "revoke").Note)
	})
	t.Run("undo of a failed grant", func(t *testing.T) {
		plan := tempPlan()
		plan.AccountExists = false
		env := newTempEnv(t, always(plan), func(call string) error {
			if call == "grant" {
				return temporal.NewNonRetryableApplicationError("no such role", string(connectors.KindNotFound), nil)
			}
			return nil
		})
		env.ExecuteWorkflow(TemporaryAccess, tempInput())
		require.Error(t, env.GetWorkflowError())
		for _, call := range []string{"revoke", "delete"} {
			au := env.rec.lastAudit(t, call)
			assert.Equal(t, ledger.EventCompensation, au.Event, call)
			assert.Contains(t, au.Note, "the request failed: ", call)
			assert.Contains(t, au.Note, "no such role", call)
		}
	})
}

func TestLedgerNoteIsCapped(t *testing.T) {
	long := make([]byte, 3*maxNoteLen)
	for i := range long {
		long[i] = 'x'
	}
	tests := []struct {
		name, a, b, want string
	}{
		{"both", "a", "b", "a; b"},
		{"only first", "a", "", "a"},
		{"only second", "", "b", "b"},
		{"none", "", "", ""},
		{"too long", "a", string(long), "a; " + string(long[:maxNoteLen-3]) + "..."},
		{"cut before a whole character", "", strings.Repeat("x", maxNoteLen-1) + "é", strings.Repeat("x", maxNoteLen-1) + "..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ledgerNote(tt.a, tt.b)
			assert.Equal(t, tt.want, got)
			assert.True(t, utf8.ValidString(got))
		})
	}
}
