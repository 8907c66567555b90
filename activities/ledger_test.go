package activities_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/ledger"
)

// joiner is the audit of the tests' changes.
var joiner = activities.Audit{
	EmployeeID: "E100001", PolicyVersion: "v7",
	Justification: ledger.Justification{Event: ledger.EventJoiner, Rules: []string{"rule engineers"}},
}

// fakeLedger is an in-memory Recorder with the real ledger's idempotency
// key; failures makes its next calls fail, like a database outage.
type fakeLedger struct {
	mu       sync.Mutex
	entries  []ledger.Entry
	calls    int
	failures int
}

func (l *fakeLedger) Record(_ context.Context, e ledger.Entry) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.failures > 0 {
		l.failures--
		return false, errors.New("connection refused")
	}
	if err := e.Validate(); err != nil {
		return false, err
	}
	for _, x := range l.entries {
		if x.WorkflowID == e.WorkflowID && x.RunID == e.RunID && x.ActivityID == e.ActivityID {
			return false, nil
		}
	}
	l.entries = append(l.entries, e)
	return true, nil
}

func (l *fakeLedger) all() []ledger.Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ledger.Entry(nil), l.entries...)
}

// TestChangesNeedALedgerAndAnAudit checks that an activity that cannot
// record its change refuses it, before touching the application.
func TestChangesNeedALedgerAndAnAudit(t *testing.T) {
	f := newFixture(t)
	noEmployee := joiner
	noEmployee.EmployeeID = ""
	badEvent := joiner
	badEvent.Event = "hire"
	tests := []struct {
		name     string
		noLedger bool
		audit    activities.Audit
		want     string
	}{
		{"no ledger", true, joiner, "no access ledger"},
		{"no audit", false, activities.Audit{}, "employee ID is empty"},
		{"no employee", false, noEmployee, "employee ID is empty"},
		{"unknown event", false, badEvent, `event "hire"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &activities.Activities{Connectors: f.acts.Connectors, Ledger: f.ledger}
			if tt.noLedger {
				a.Ledger = nil
			}
			var suite testsuite.WorkflowTestSuite
			env := suite.NewTestActivityEnvironment()
			env.RegisterActivity(a)
			for _, c := range []struct {
				fn any
				in any
			}{
				{a.EnsureAccount, activities.EnsureAccountInput{App: "pg-b", Account: account("ada"), Audit: tt.audit}},
				{a.GrantEntitlement, activities.EntitlementInput{App: "pg-b", Username: "ada", Entitlement: f.group, Audit: tt.audit}},
				{a.RevokeEntitlement, activities.EntitlementInput{App: "pg-b", Username: "ada", Entitlement: f.group, Audit: tt.audit}},
				{a.DisableAccount, activities.AccountInput{App: "pg-b", Username: "ada", Audit: tt.audit}},
				{a.EnableAccount, activities.AccountInput{App: "pg-b", Username: "ada", Audit: tt.audit}},
				{a.DeleteAccount, activities.AccountInput{App: "pg-b", Username: "ada", Audit: tt.audit}},
			} {
				_, err := env.ExecuteActivity(c.fn, c.in)
				assert.Equal(t, string(connectors.KindInvalid), errType(t, err))
				assert.Contains(t, err.Error(), tt.want)
			}
			exists, _ := f.role(f.prefix("pg-b") + "ada")
			assert.False(t, exists, "the account was created without a record")
			assert.Empty(t, f.ledger.all())
		})
	}
}

func TestCreatedDisabledIsRecordedSo(t *testing.T) {
	f := newFixture(t)
	_, err := run[connectors.EnsureAccountResponse](f, f.acts.EnsureAccount,
		activities.EnsureAccountInput{App: "pg-a", Account: account("ada"), Disabled: true, Audit: joiner})
	require.NoError(t, err)
	entries := f.ledger.all()
	require.Len(t, entries, 1)
	assert.Equal(t, ledger.ActionCreated, entries[0].Action)
	assert.True(t, entries[0].Disabled)
	assert.Equal(t, ledger.StateDisabled, ledger.Fold(entries)[0].State)
}

// grantOnce runs GrantEntitlement from a workflow with retries, as the
// real workflows do.
func grantOnce(ctx workflow.Context, in activities.EntitlementInput) (connectors.EntitlementResponse, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
	var a *activities.Activities
	var res connectors.EntitlementResponse
	err := workflow.ExecuteActivity(ctx, a.GrantEntitlement, in).Get(ctx, &res)
	return res, err
}

// TestLedgerOutageIsRetriedAndRecordedOnce checks that a change whose
// record fails is retried, and that the retry (which finds the change made
// already) records it, once, under the same activity.
func TestLedgerOutageIsRetriedAndRecordedOnce(t *testing.T) {
	f := newFixture(t)
	_, err := run[connectors.EnsureAccountResponse](f, f.acts.EnsureAccount,
		activities.EnsureAccountInput{App: "pg-b", Account: account("ada"), Audit: joiner})
	require.NoError(t, err)
	f.ledger.mu.Lock()
	f.ledger.failures, f.ledger.calls = 2, 0
	f.ledger.mu.Unlock()

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(grantOnce)
	env.RegisterActivity(f.acts)
	env.ExecuteWorkflow(grantOnce, activities.EntitlementInput{App: "pg-b", Username: "ada", Entitlement: f.group, Audit: joiner})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res connectors.EntitlementResponse
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.False(t, res.Changed, "the last attempt found the grant made")
	assert.True(t, f.member(f.prefix("pg-b")+"ada", f.group))

	entries := f.ledger.all()
	require.Len(t, entries, 2, "created, then granted once")
	assert.Equal(t, ledger.ActionGranted, entries[1].Action)
	assert.Equal(t, f.group, entries[1].Entitlement)
	f.ledger.mu.Lock()
	assert.Equal(t, 3, f.ledger.calls, "two failed records, then one that wrote")
	f.ledger.mu.Unlock()
}

// TestLedgerOutageOutlastingTheActivity: a leaver's step whose activity
// made the change but could not record it, on every attempt, is tried
// again by the workflow with a new activity, which finds nothing left to
// do. Only when the workflow says it retries (Audit.Retry) is the change
// recorded then; otherwise the ledger would keep showing access that is
// gone.
func TestLedgerOutageOutlastingTheActivity(t *testing.T) {
	f := newFixture(t)
	_, err := run[connectors.EnsureAccountResponse](f, f.acts.EnsureAccount,
		activities.EnsureAccountInput{App: "pg-b", Account: account("ada"), Audit: joiner})
	require.NoError(t, err)
	grant := activities.EntitlementInput{App: "pg-b", Username: "ada", Entitlement: f.group, Audit: joiner}
	_, err = run[connectors.EntitlementResponse](f, f.acts.GrantEntitlement, grant)
	require.NoError(t, err)

	leaver := activities.Audit{EmployeeID: "E100001", Justification: ledger.Justification{Event: ledger.EventLeaver}}
	revoke := activities.EntitlementInput{App: "pg-b", Username: "ada", Entitlement: f.group, Audit: leaver}
	f.ledger.mu.Lock()
	f.ledger.failures = 1
	f.ledger.mu.Unlock()
	_, err = run[connectors.EntitlementResponse](f, f.acts.RevokeEntitlement, revoke)
	require.ErrorContains(t, err, "made but not recorded")
	assert.False(t, f.member(f.prefix("pg-b")+"ada", f.group), "the revocation itself was made")

	tests := []struct {
		name   string
		retry  bool
		record bool
	}{
		{"a first try that finds nothing to do records nothing", false, false},
		{"the workflow's retry records the change", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.ledger.all())
			in := revoke
			in.Audit.Retry = tt.retry
			res, err := run[connectors.EntitlementResponse](f, f.acts.RevokeEntitlement, in)
			require.NoError(t, err)
			assert.False(t, res.Changed)
			entries := f.ledger.all()
			if !tt.record {
				assert.Len(t, entries, before)
				return
			}
			require.Len(t, entries, before+1)
			assert.Equal(t, ledger.ActionRevoked, entries[before].Action)
			assert.Empty(t, ledger.Fold(entries)[1:], "the ledger no longer shows the entitlement")
		})
	}
}
