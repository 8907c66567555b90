package workflows

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/reconcile"
)

const testReconcileID = "reconcile-20261125T090000Z"

// fixFake plays the store's side of fix mode: the pending items, the
// outcomes recorded, and every change activity called with its audit.
type fixFake struct {
	mu       sync.Mutex
	items    []reconcile.Item
	calls    []string
	audits   []activities.Audit
	outcomes []reconcile.Outcome
	batches  []activities.FixBatchInput
	// fail decides the error of a change call.
	fail func(call string) error
}

func (f *fixFake) change(call string, au activities.Audit) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(call); err != nil {
			return err
		}
	}
	f.calls = append(f.calls, call)
	f.audits = append(f.audits, au)
	return nil
}

func (f *fixFake) batch(_ context.Context, in activities.FixBatchInput) (activities.FixBatch, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, in)
	var out activities.FixBatch
	out.Next = in.AfterSeq
	for _, it := range f.items {
		if it.Seq > in.AfterSeq && len(out.Items) < in.Limit {
			out.Items = append(out.Items, it)
			out.Next = it.Seq
		}
	}
	out.Done = len(out.Items) < in.Limit
	return out, nil
}

func (f *fixFake) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// scans are the canned scan results by application.
type scans map[string]activities.ScanResult

func scanOf(app string, accounts int, counts map[reconcile.Class]int, fixes int) activities.ScanResult {
	return activities.ScanResult{App: app, Accounts: accounts, Summary: reconcile.Summary{Counts: counts, Fixes: fixes}}
}

func newReconcileEnv(t *testing.T, sc scans, f *fixFake) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestWorkflowEnvironment()
	env.SetStartTime(testStart)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: testReconcileID})
	env.RegisterWorkflow(Reconcile)
	env.RegisterActivity(&activities.Activities{})
	env.OnActivity(acts.ReconcileApplications, mock.Anything).Return([]string{"scim", "ldap", "postgres"}, nil).Maybe()
	env.OnActivity(acts.ScanApplication, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ScanInput) (activities.ScanResult, error) {
			if in.RunID != testReconcileID {
				return activities.ScanResult{}, fmt.Errorf("scan keyed by %q, want the workflow ID", in.RunID)
			}
			res, ok := sc[in.App]
			if !ok {
				return activities.ScanResult{}, temporal.NewNonRetryableApplicationError("ldap ListAccounts: PermissionDenied: no read access", string(connectors.KindPermission), nil)
			}
			return res, nil
		}).Maybe()
	env.OnActivity(acts.ReconcileFixBatch, mock.Anything, mock.Anything).Return(f.batch).Maybe()
	env.OnActivity(acts.RecordFixOutcomes, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FixOutcomesInput) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.outcomes = append(f.outcomes, in.Outcomes...)
			return nil
		}).Maybe()
	env.OnActivity(acts.ReserveUsername, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReserveUsernameInput) (activities.ReserveUsernameResult, error) {
			return activities.ReserveUsernameResult{Username: "new." + strings.ToLower(in.FamilyName)}, f.change("reserve "+in.EmployeeID, activities.Audit{})
		}).Maybe()
	env.OnActivity(acts.EnsureAccount, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EnsureAccountInput) (connectors.EnsureAccountResponse, error) {
			return connectors.EnsureAccountResponse{Created: true}, f.change("create "+in.App+"/"+in.Account.Username+" "+in.Account.EmployeeID, in.Audit)
		}).Maybe()
	env.OnActivity(acts.GrantEntitlement, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EntitlementInput) (connectors.EntitlementResponse, error) {
			return connectors.EntitlementResponse{Changed: true}, f.change("grant "+in.App+"/"+in.Username+"/"+in.Entitlement, in.Audit)
		}).Maybe()
	env.OnActivity(acts.RevokeEntitlement, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EntitlementInput) (connectors.EntitlementResponse, error) {
			return connectors.EntitlementResponse{Changed: true}, f.change("revoke "+in.App+"/"+in.Username+"/"+in.Entitlement, in.Audit)
		}).Maybe()
	env.OnActivity(acts.EnableAccount, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AccountInput) (connectors.EnableResponse, error) {
			return connectors.EnableResponse{Changed: true}, f.change("enable "+in.App+"/"+in.Username, in.Audit)
		}).Maybe()
	env.OnActivity(acts.DisableAccount, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.AccountInput) (connectors.DisableResponse, error) {
			return connectors.DisableResponse{Changed: true}, f.change("disable "+in.App+"/"+in.Username, in.Audit)
		}).Maybe()
	return env
}

// driftItems are one fix of every kind, in the order a scan stores them.
func driftItems() []reconcile.Item {
	attrs := &connectors.Account{EmployeeID: "E100003", GivenName: "Ana", FamilyName: "Lima", Email: "ana@example.com"}
	return []reconcile.Item{
		{Seq: 1, Class: reconcile.ClassOrphan, Application: "ldap", Account: "zombie", EmployeeID: "E900001", Action: reconcile.ActionDisable, Reason: "no active HR record for E900001"},
		{Seq: 2, Class: reconcile.ClassExcess, Application: "postgres", Account: "bob", EmployeeID: "E100002", Entitlement: "prod_read", Action: reconcile.ActionRevoke, Reason: "nothing justifies it"},
		{Seq: 3, Class: reconcile.ClassMissing, Application: "scim", EmployeeID: "E100003", Action: reconcile.ActionCreate, Reason: "no account", Attributes: attrs, Rules: []string{"rule staff"}, PolicyVersion: "v1"},
		{Seq: 4, Class: reconcile.ClassMissing, Application: "scim", Account: "ana.lima", EmployeeID: "E100003", Entitlement: "all-staff", Action: reconcile.ActionGrant, Reason: "policy grants it", Rules: []string{"rule staff"}, PolicyVersion: "v1"},
		{Seq: 5, Class: reconcile.ClassMissing, Application: "ldap", Account: "carl", EmployeeID: "E100004", Action: reconcile.ActionEnable, Reason: "account disabled"},
	}
}

func driftScans() scans {
	return scans{
		"ldap":     scanOf("ldap", 100, map[reconcile.Class]int{reconcile.ClassOrphan: 1, reconcile.ClassMissing: 1, reconcile.ClassUnmanaged: 2}, 2),
		"postgres": scanOf("postgres", 40, map[reconcile.Class]int{reconcile.ClassExcess: 1}, 1),
		"scim":     scanOf("scim", 60, map[reconcile.Class]int{reconcile.ClassMissing: 2}, 2),
	}
}

func TestReconcileReportMergesScansAndChangesNothing(t *testing.T) {
	sc := driftScans()
	delete(sc, "ldap") // its scan fails for good
	f := &fixFake{items: driftItems()}
	env := newReconcileEnv(t, sc, f)
	env.ExecuteWorkflow(Reconcile, ReconcileInput{})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res ReconcileResult
	require.NoError(t, env.GetWorkflowResult(&res))

	assert.Equal(t, testReconcileID, res.RunID)
	assert.Equal(t, "report", res.Mode)
	assert.Equal(t, ReconcileCompleted, res.Status)
	require.Len(t, res.Apps, 3)
	assert.Equal(t, []string{"ldap", "postgres", "scim"}, []string{res.Apps[0].App, res.Apps[1].App, res.Apps[2].App}, "sorted by name")
	assert.Contains(t, res.Apps[0].Error, "PermissionDenied", "a failed scan is reported, not fatal")
	assert.Empty(t, res.Apps[1].Error)
	assert.Equal(t, map[reconcile.Class]int{reconcile.ClassOrphan: 0, reconcile.ClassMissing: 2, reconcile.ClassExcess: 1, reconcile.ClassUnmanaged: 0}, res.Totals)
	assert.Equal(t, 3, res.PlannedFixes, "fixes of the applications scanned")
	assert.Equal(t, DefaultReconcileCap, res.Cap)
	assert.Empty(t, f.list(), "report mode changes nothing")
	assert.Empty(t, f.batches, "report mode asks for no fixes")
}

func TestReconcileFixCallsTheLifecycleActivities(t *testing.T) {
	f := &fixFake{items: driftItems()}
	env := newReconcileEnv(t, driftScans(), f)
	env.ExecuteWorkflow(Reconcile, ReconcileInput{Fix: true, Source: "hr"})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res ReconcileResult
	require.NoError(t, env.GetWorkflowResult(&res))

	assert.Equal(t, []string{
		"disable ldap/zombie",
		"revoke postgres/bob/prod_read",
		"reserve E100003",
		"create scim/new.lima E100003",
		"grant scim/ana.lima/all-staff",
		"enable ldap/carl",
	}, f.list(), "each fix through the lifecycle activity, in the order found; a missing username is reserved first")
	for i, au := range f.audits {
		if f.calls[i] == "reserve E100003" {
			continue
		}
		assert.Equal(t, ledger.EventReconciliation, au.Event, f.calls[i])
		assert.Contains(t, au.Note, "reconciliation "+testReconcileID, "the run is the recorded reason")
		assert.NotEmpty(t, au.EmployeeID, f.calls[i])
	}
	assert.Equal(t, "E900001", f.audits[0].EmployeeID, "the orphan's owner")
	assert.Contains(t, f.audits[0].Note, "orphan: no active HR record for E900001")
	assert.Equal(t, []string{"rule staff"}, f.audits[4].Rules, "a grant carries the policy rules behind it")
	assert.Equal(t, "v1", f.audits[4].PolicyVersion)
	assert.Empty(t, f.audits[1].Rules, "a revocation cites no rule")

	assert.Equal(t, ReconcileCompleted, res.Status)
	assert.Equal(t, 5, res.PlannedFixes)
	assert.Equal(t, 5, res.Fixed)
	assert.Zero(t, res.Failed)
	require.Len(t, f.outcomes, 5)
	for _, o := range f.outcomes {
		assert.Equal(t, reconcile.StatusFixed, o.Status)
	}
	require.NotEmpty(t, f.batches)
	assert.Equal(t, []string{"ldap", "postgres", "scim"}, f.batches[0].Apps)
	assert.Equal(t, "hr", f.batches[0].Source)
}

func TestReconcileFailedFixDoesNotStopTheOthers(t *testing.T) {
	f := &fixFake{items: driftItems(), fail: func(call string) error {
		if strings.HasPrefix(call, "revoke") {
			return temporal.NewNonRetryableApplicationError("postgres RevokeEntitlement: PermissionDenied: not allowed", string(connectors.KindPermission), nil)
		}
		return nil
	}}
	env := newReconcileEnv(t, driftScans(), f)
	env.ExecuteWorkflow(Reconcile, ReconcileInput{Fix: true})
	require.NoError(t, env.GetWorkflowError())
	var res ReconcileResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Equal(t, 4, res.Fixed)
	assert.Equal(t, 1, res.Failed)
	require.Len(t, f.outcomes, 5)
	assert.Equal(t, reconcile.StatusFailed, f.outcomes[1].Status)
	assert.Contains(t, f.outcomes[1].Note, "PermissionDenied")
	assert.Contains(t, f.list(), "enable ldap/carl", "later fixes still ran")
}

// manyItems are n orphans, more than one batch.
func manyItems(n int) []reconcile.Item {
	out := make([]reconcile.Item, n)
	for i := range out {
		out[i] = reconcile.Item{Seq: int64(i + 1), Class: reconcile.ClassOrphan, Application: "ldap",
			Account: fmt.Sprintf("u%03d", i), EmployeeID: fmt.Sprintf("E9%05d", i), Action: reconcile.ActionDisable, Reason: "gone"}
	}
	return out
}

func TestReconcileOverTheCapWaitsForApproval(t *testing.T) {
	f := &fixFake{items: manyItems(60)}
	env := newReconcileEnv(t, scans{"ldap": scanOf("ldap", 60, map[reconcile.Class]int{reconcile.ClassOrphan: 60}, 60)}, f)
	var refused, accepted bool
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryState)
		require.NoError(t, err)
		var st ReconcileState
		require.NoError(t, v.Get(&st))
		assert.Equal(t, StateWaitingApproval, st.State)
		assert.Equal(t, testStart.Add(DefaultFixApprovalTimeout), st.ApprovalDeadline)
		assert.Empty(t, f.list(), "nothing changes before the approval")

		env.UpdateWorkflow(UpdateApproveFixes, "bad", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { refused = strings.Contains(err.Error(), "not an employee ID") },
			OnAccept:   func() { t.Error("an approver who is no employee ID must be refused") },
			OnComplete: func(any, error) {},
		}, FixDecision{ApproverID: "root", Approve: true})
		env.UpdateWorkflow(UpdateApproveFixes, "ok", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { t.Errorf("approval refused: %v", err) },
			OnAccept:   func() { accepted = true },
			OnComplete: func(any, error) {},
		}, FixDecision{ApproverID: "E100015", Approve: true, Comment: "roster checked"})
	}, time.Hour)
	env.ExecuteWorkflow(Reconcile, ReconcileInput{Fix: true, Apps: []string{"ldap"}})
	require.NoError(t, env.GetWorkflowError())
	var res ReconcileResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.True(t, refused, "the validator refuses a bad approver at once")
	assert.True(t, accepted)
	assert.Equal(t, ReconcileCompleted, res.Status)
	assert.Equal(t, 60, res.PlannedFixes)
	assert.Equal(t, 50, res.Cap)
	assert.Equal(t, 60, res.Fixed, "once approved, every planned fix")
	require.NotNil(t, res.Approval)
	assert.Equal(t, "E100015", res.Approval.ApproverID)
	assert.Equal(t, testStart.Add(time.Hour), res.Approval.DecidedAt)
	assert.Len(t, f.list(), 60)
	assert.Len(t, f.batches, 3, "fixes come in batches of 25")
}

func TestReconcileRejectedFixesChangeNothing(t *testing.T) {
	f := &fixFake{items: manyItems(10)}
	env := newReconcileEnv(t, scans{"ldap": scanOf("ldap", 10, map[reconcile.Class]int{reconcile.ClassOrphan: 10}, 10)}, f)
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateApproveFixes, "no", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("rejection refused: %v", err) },
			OnAccept: func() {}, OnComplete: func(any, error) {},
		}, FixDecision{ApproverID: "E100015", Approve: false, Comment: "the roster is broken"})
	}, 10*time.Minute)
	// 10 fixes over a cap of 5 (50% of 10 accounts, below --cap 8).
	env.ExecuteWorkflow(Reconcile, ReconcileInput{Fix: true, Apps: []string{"ldap"}, Cap: 8, CapPercent: 50})
	require.NoError(t, env.GetWorkflowError())
	var res ReconcileResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Equal(t, ReconcileRejected, res.Status)
	assert.Equal(t, 5, res.Cap)
	assert.Empty(t, f.list(), "a rejected run changes nothing")
	assert.Empty(t, f.batches)
	require.NotNil(t, res.Approval)
	assert.False(t, res.Approval.Approve)
}

func TestReconcileApprovalTimesOut(t *testing.T) {
	f := &fixFake{items: manyItems(3)}
	env := newReconcileEnv(t, scans{"ldap": scanOf("ldap", 3, map[reconcile.Class]int{reconcile.ClassOrphan: 3}, 3)}, f)
	env.ExecuteWorkflow(Reconcile, ReconcileInput{Fix: true, Apps: []string{"ldap"}, Cap: 2, ApprovalTimeout: 2 * time.Hour})
	require.NoError(t, env.GetWorkflowError())
	var res ReconcileResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Equal(t, ReconcileExpired, res.Status)
	assert.Equal(t, 2*time.Hour, env.Now().Sub(testStart), "the wait lasts the approval timeout")
	assert.Empty(t, f.list())
	assert.Nil(t, res.Approval)
}

func TestReconcileDecisionOutsideTheWaitIsRefused(t *testing.T) {
	f := &fixFake{items: driftItems()}
	env := newReconcileEnv(t, driftScans(), f)
	var refused error
	env.RegisterDelayedCallback(func() {
		env.UpdateWorkflow(UpdateApproveFixes, "early", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { refused = err }, OnAccept: func() {}, OnComplete: func(any, error) {},
		}, FixDecision{ApproverID: "E100015", Approve: true})
	}, 0)
	env.ExecuteWorkflow(Reconcile, ReconcileInput{})
	require.NoError(t, env.GetWorkflowError())
	require.Error(t, refused)
	assert.Contains(t, refused.Error(), "not waiting for approval")
}

func TestReconcileResumesFixingAfterContinueAsNew(t *testing.T) {
	f := &fixFake{items: manyItems(30)}
	env := newReconcileEnv(t, nil, f)
	prev := ReconcileResult{RunID: testReconcileID, Mode: "fix", PlannedFixes: 30, Cap: 50, Fixed: 25,
		Apps: []AppReconcile{{ScanResult: scanOf("ldap", 30, map[reconcile.Class]int{reconcile.ClassOrphan: 30}, 30)}}}
	env.ExecuteWorkflow(Reconcile, ReconcileInput{Fix: true, Resume: &ReconcileResume{Result: prev, FixApps: []string{"ldap"}, After: 25}})
	require.NoError(t, env.GetWorkflowError())
	var res ReconcileResult
	require.NoError(t, env.GetWorkflowResult(&res))
	assert.Equal(t, 30, res.Fixed, "the 5 fixes left, added to the 25 made before")
	assert.Equal(t, []string{"disable ldap/u025", "disable ldap/u026", "disable ldap/u027", "disable ldap/u028", "disable ldap/u029"}, f.list())
}

func TestReconcileRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		in   ReconcileInput
		want string
	}{
		{"negative cap", ReconcileInput{Cap: -1}, "cap must not be negative"},
		{"percent", ReconcileInput{CapPercent: 101}, "cap percent must be 0 to 100"},
		{"page size", ReconcileInput{PageSize: connectors.MaxPageSize + 1}, "page size"},
		{"source", ReconcileInput{Source: "HR feed"}, "source"},
		{"duplicate app", ReconcileInput{Apps: []string{"ldap", "ldap"}}, "listed twice"},
		{"scope id", ReconcileInput{Scope: activities.ReconcileScope{EmployeeIDs: []string{"x' OR 1=1"}}}, "scope: employee ID"},
		{"timeout", ReconcileInput{ApprovalTimeout: -time.Second}, "approval timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fixFake{}
			env := newReconcileEnv(t, driftScans(), f)
			env.ExecuteWorkflow(Reconcile, tc.in)
			err := env.GetWorkflowError()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, f.list())
		})
	}
}

func TestReconcileCap(t *testing.T) {
	tests := []struct {
		name           string
		cap, percent   int
		accounts, cap2 int
	}{
		{"default", 0, 0, 100000, DefaultReconcileCap},
		{"explicit", 10, 0, 100000, 10},
		{"percent of accounts", 0, 2, 1000, 20},
		{"percent at least one", 0, 1, 10, 1},
		{"lower of the two", 30, 2, 10000, 30},
		{"percent lower", 300, 2, 10000, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.cap2, reconcileCap(ReconcileInput{Cap: tc.cap, CapPercent: tc.percent}, tc.accounts))
		})
	}
}
