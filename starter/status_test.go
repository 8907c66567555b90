package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/mocks"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/storetest"
	"github.com/provisio-dev/provisio/internal/testenv"
	"github.com/provisio-dev/provisio/workflows"
)

func statusCmd(open openLedgerFunc) func(*rootOptions) *cobra.Command {
	return func(o *rootOptions) *cobra.Command { return newStatusCmdWith(o, open) }
}

// statusClient is a mocked Temporal client listing runs for E100091, with
// the onboarding's state and the mover's approval requests.
func statusClient(t *testing.T, runs ...*workflowpb.WorkflowExecutionInfo) *mocks.Client {
	c := mocks.NewClient(t)
	c.On("Close").Return()
	c.On("ListWorkflow", mock.Anything, &workflowservice.ListWorkflowExecutionsRequest{Query: "EmployeeId = 'E100091'"}).
		Return(&workflowservice.ListWorkflowExecutionsResponse{Executions: runs}, nil)
	onb := mocks.NewEncodedValue(t)
	onb.On("Get", mock.Anything).Run(func(args mock.Arguments) {
		*args.Get(0).(*workflows.OnboardingState) = workflows.OnboardingState{State: "completed", Username: "ana.test",
			Accounts: []workflows.AccountResult{{Application: "scim", Username: "ana.test", Entitlements: []string{"engineering"}}}}
	}).Return(nil).Maybe()
	c.On("QueryWorkflow", mock.Anything, "onboarding-E100091", "r1", workflows.QueryState).Return(onb, nil).Maybe()
	apr := mocks.NewEncodedValue(t)
	apr.On("Get", mock.Anything).Run(func(args mock.Arguments) {
		*args.Get(0).(*workflows.ApprovalsState) = workflows.ApprovalsState{Planned: true, Requests: []workflows.ApprovalRequest{
			waitingRequest("scim/finance-admins", "E100091", stepState("manager", "E100008", "E100001")),
			{ID: "done", State: workflows.RequestGranted, Steps: []workflows.ApprovalStepState{stepState("owner", "E100088", "")}},
		}}
	}).Return(nil).Maybe()
	c.On("QueryWorkflow", mock.Anything, "mover-E100091-abc", "r2", workflows.QueryApprovals).Return(apr, nil).Maybe()
	return c
}

func onboardingRun(t *testing.T) *workflowpb.WorkflowExecutionInfo {
	closed := t0.Add(time.Hour)
	return execution(t, "onboarding-E100091", "r1", "Onboarding", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, t0, &closed,
		map[string]any{"EmployeeId": "E100091", "LifecycleEvent": "joiner", "LifecycleState": "completed"})
}

func moverRun(t *testing.T) *workflowpb.WorkflowExecutionInfo {
	return execution(t, "mover-E100091-abc", "r2", "Mover", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, t0.Add(24*time.Hour), nil,
		map[string]any{"EmployeeId": "E100091", "LifecycleEvent": "mover", "LifecycleState": "waiting-approval",
			"WaitingApprovers": []string{"E100001", "E100008"}})
}

func TestStatusShowsAccessApprovalsAndRuns(t *testing.T) {
	id, trail := fixture()
	l := &fakeLedger{holdings: map[string][]ledger.Holding{id: ledger.Fold(trail)}}
	c := statusClient(t, onboardingRun(t), moverRun(t))

	t.Run("table", func(t *testing.T) {
		out, _, err := runCmd(t, testCfg, c, statusCmd(opener(t, l)), id)
		require.NoError(t, err)
		assert.Contains(t, out, "Employee E100091: active: 1 account(s), 1 entitlement(s); role change under way; 1 approval(s) pending\n")
		assert.Regexp(t, `(?s)Access now \(from the access ledger\):\nAPPLICATION.*scim\s+ana\.test\s+finance-admins\s+granted`, out)
		assert.Regexp(t, `(?s)Approvals pending:\nREQUEST.*onboarding-E100091/scim/finance-admins\s+1/1 manager\s+E100008 or E100001`, out)
		assert.Regexp(t, `(?s)Runs:\nWORKFLOW.*mover-E100091-abc\s+Mover\s+running\s+waiting-approval.*onboarding-E100091\s+Onboarding\s+completed`, out,
			"newest run first")
		assert.Contains(t, out, "onboarding-E100091: http://ui/namespaces/default/workflows/onboarding-E100091/r1/history")
		assert.Contains(t, out, "mover-E100091-abc: http://ui/namespaces/default/workflows/mover-E100091-abc/r2/history")
		assert.Contains(t, out, "username: ana.test", "the onboarding's own state is kept")
	})
	t.Run("json", func(t *testing.T) {
		out, _, err := runCmd(t, testCfg, c, statusCmd(opener(t, l)), id, "-o", "json")
		require.NoError(t, err)
		var raw map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(out), &raw))
		assert.ElementsMatch(t, []string{"employeeId", "summary", "access", "pendingApprovals", "runs"}, keys(raw))
		var rep statusReport
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		require.Len(t, rep.Access, 2)
		assert.Equal(t, "finance-admins", rep.Access[1].Entitlement)
		assert.Equal(t, "http://ui/namespaces/default/workflows/onboarding-E100091/run-1/history", rep.Access[1].URL)
		require.Len(t, rep.PendingApprovals, 1)
		assert.Equal(t, statusApproval{
			RequestID: "onboarding-E100091/scim/finance-admins", WorkflowID: "mover-E100091-abc",
			Application: "scim", Entitlement: "finance-admins", Step: 1, Steps: 1, Kind: "manager",
			WaitingFor: []string{"E100008", "E100001"}, WaitingSince: t0, EscalatesAt: t0.Add(72 * time.Hour),
			ExpiresAt: t0.Add(168 * time.Hour), URL: "http://ui/namespaces/default/workflows/mover-E100091-abc/r2/history",
		}, rep.PendingApprovals[0])
		require.Len(t, rep.Runs, 2)
		assert.Equal(t, "mover-E100091-abc", rep.Runs[0].WorkflowID)
		assert.Equal(t, []string{"E100001", "E100008"}, rep.Runs[0].WaitingApprovers)
		require.NotNil(t, rep.Runs[1].Onboarding)
		assert.Equal(t, "ana.test", rep.Runs[1].Onboarding.Username)
	})
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestStatusWithoutRunsShowsTheLedger(t *testing.T) {
	id, trail := fixture()
	l := &fakeLedger{holdings: map[string][]ledger.Holding{id: ledger.Fold(trail)}}
	c := statusClient(t)
	out, _, err := runCmd(t, testCfg, c, statusCmd(opener(t, l)), id)
	require.NoError(t, err)
	assert.Contains(t, out, "Employee E100091: active: 1 account(s), 1 entitlement(s)\n")
	assert.Regexp(t, `scim\s+ana\.test\s+-\s+enabled`, out)
	assert.Contains(t, out, "Runs:\n  none kept in the Temporal history\n")
}

func TestStatusOfALeaverWhoseRunsAreGone(t *testing.T) {
	id, trail := fixture()
	gone := trail[0]
	gone.Seq, gone.Action, gone.At = 9, ledger.ActionDeleted, t0
	gone.Justification = ledger.Justification{Event: ledger.EventLeaver}
	gone.WorkflowID, gone.RunID = "offboarding-"+id, "r9"
	trail = append(trail, gone)
	l := &fakeLedger{holdings: map[string][]ledger.Holding{}, trail: map[string][]ledger.Entry{id: trail}}
	c := statusClient(t)

	out, _, err := runCmd(t, testCfg, c, statusCmd(opener(t, l)), id)
	require.NoError(t, err)
	assert.Contains(t, out, "Employee E100091: no access held (last change: deleted in scim at "+localTime(t0)+"); removal not verified in scim (deleted without read-back)\n")
	assert.Contains(t, out, "last change: deleted scim/ana.test at "+localTime(t0)+" by offboarding-E100091")
	assert.Regexp(t, `(?s)Access removal \(from the access ledger\):\nAPPLICATION\s+ACCOUNT\s+STATE\s+REQUESTED\s+VERIFIED\n`+
		`scim\s+ana\.test\s+deleted\s+-\s+not verified: deleted without read-back\n`, out)

	out, _, err = runCmd(t, testCfg, c, statusCmd(opener(t, l)), id, "-o", "json")
	require.NoError(t, err)
	var rep statusReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.NotNil(t, rep.LastChange)
	assert.Equal(t, ledger.ActionDeleted, rep.LastChange.Action)
	assert.Equal(t, "http://ui/namespaces/default/workflows/offboarding-E100091/r9/history", rep.LastChange.URL)
	assert.Empty(t, rep.Access)
	assert.Empty(t, rep.Runs)
	require.Len(t, rep.Removal, 1)
	assert.Equal(t, ledger.StateDeleted, rep.Removal[0].State)
	assert.True(t, rep.Removal[0].Removed)
	assert.False(t, rep.Removal[0].Verified)
}

func TestRemovalBegan(t *testing.T) {
	off := func(status, state string) runInfo {
		return runInfo{runRow: runRow{Type: "Offboarding", Status: status, State: state}}
	}
	onb := runInfo{runRow: runRow{Type: "Onboarding", Status: "completed"}}
	leaverEntry := ledger.Entry{Action: ledger.ActionDeleted, Justification: ledger.Justification{Event: ledger.EventLeaver}}
	joinerEntry := ledger.Entry{Action: ledger.ActionCreated, Justification: ledger.Justification{Event: ledger.EventJoiner}}
	tests := []struct {
		name  string
		runs  []runInfo
		trail []ledger.Entry
		want  bool
	}{
		{"active", []runInfo{onb}, []ledger.Entry{joinerEntry}, false},
		{"scheduled: nothing removed yet", []runInfo{off("running", workflows.StateScheduled), onb}, []ledger.Entry{joinerEntry}, false},
		{"disabling", []runInfo{off("running", workflows.StateDisabling)}, []ledger.Entry{joinerEntry}, true},
		{"retention", []runInfo{off("running", workflows.StateRetention)}, nil, true},
		{"completed", []runInfo{off("completed", "completed")}, nil, true},
		{"failed", []runInfo{off("failed", "failed")}, nil, true},
		{"retracted", []runInfo{off("canceled", workflows.StateRetracted), onb}, []ledger.Entry{joinerEntry, leaverEntry}, false},
		{"runs gone, a leaver made the last change", nil, []ledger.Entry{joinerEntry, leaverEntry}, true},
		{"runs gone, a joiner made the last change", nil, []ledger.Entry{leaverEntry, joinerEntry}, false},
		{"nothing at all", nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, removalBegan(tt.runs, tt.trail))
		})
	}
}

// TestStatusOfALeaverOnPostgreSQL records an offboarding's verified
// revocations in a real ledger and reads them back through `status`.
func TestStatusOfALeaverOnPostgreSQL(t *testing.T) {
	const id = "E100091"
	pool := storetest.Pool(t, "statustest")
	st := ledger.New(pool)
	open := func(context.Context, config.Config) (ledgerReader, func(), error) { return st, func() {}, nil }
	ctx := testenv.Context(t)
	requested := time.Date(2026, 2, 2, 17, 0, 0, 0, time.UTC)
	n := 0
	record := func(app string, action ledger.Action, ent, how string) {
		t.Helper()
		n++
		e := ledger.Entry{EmployeeID: id, Application: app, Account: "ana.test", Entitlement: ent, Action: action,
			Justification: ledger.Justification{Event: ledger.EventJoiner}, WorkflowID: "onboarding-" + id, RunID: "r1",
			ActivityID: fmt.Sprint(n)}
		if action.IsRevocation() {
			e.Event, e.WorkflowID, e.RunID = ledger.EventLeaver, "offboarding-"+id, "r3"
		}
		if how != "" {
			e.RequestedAt, e.VerifiedAt, e.VerifiedBy = requested, requested.Add(time.Duration(n)*time.Second), how
		}
		wrote, err := st.Record(ctx, e)
		require.NoError(t, err)
		require.True(t, wrote)
	}
	record("ldap", ledger.ActionCreated, "", "")
	record("ldap", ledger.ActionGranted, "staff", "")
	record("scim", ledger.ActionCreated, "", "")
	record("ldap", ledger.ActionDisabled, "", ledger.VerifiedReadBack)
	record("ldap", ledger.ActionRevoked, "staff", ledger.VerifiedReadBack)
	record("scim", ledger.ActionDeleted, "", ledger.VerifiedFallbackDelete)

	closed := t0.Add(49 * time.Hour)
	offboarding := execution(t, "offboarding-"+id, "r3", "Offboarding", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, t0.Add(48*time.Hour), &closed,
		map[string]any{"EmployeeId": id, "LifecycleEvent": "leaver", "LifecycleState": "completed"})
	c := statusClient(t, offboarding, onboardingRun(t))
	// No worker answers for the closed offboarding: the ledger alone tells
	// how removal went.
	c.On("QueryWorkflow", mock.Anything, "offboarding-"+id, "r3", workflows.QueryState).Return(nil, errors.New("no poller"))

	t.Run("every application verified", func(t *testing.T) {
		out, _, err := runCmd(t, testCfg, c, statusCmd(open), id)
		require.NoError(t, err)
		assert.Contains(t, out, "Employee E100091: leaver: access removed (verified)\n")
		assert.Regexp(t, `(?s)Access removal \(from the access ledger\):\nAPPLICATION\s+ACCOUNT\s+STATE\s+REQUESTED\s+VERIFIED\n`+
			`ldap\s+ana\.test\s+disabled\s+`+localTime(requested)+`\s+`+localTime(requested.Add(4*time.Second))+` by read-back\n`+
			`scim\s+ana\.test\s+deleted\s+`+localTime(requested)+`\s+`+localTime(requested.Add(6*time.Second))+` by fallback-delete\n`, out)

		out, _, err = runCmd(t, testCfg, c, statusCmd(open), id, "-o", "json")
		require.NoError(t, err)
		var raw struct {
			Summary string           `json:"summary"`
			Removal []map[string]any `json:"removal"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &raw))
		assert.Equal(t, "leaver: access removed (verified)", raw.Summary)
		require.Len(t, raw.Removal, 2)
		// The documented field names.
		got := utcTimes(raw.Removal[1])
		assert.NotEmpty(t, got["since"], "when the delete was recorded")
		assert.Equal(t, map[string]any{
			"application": "scim", "account": "ana.test", "state": "deleted", "since": got["since"],
			"entitlements": []any{}, "removed": true, "verified": true,
			"requestedAt": "2026-02-02T17:00:00Z", "verifiedAt": "2026-02-02T17:00:06Z", "verifiedBy": "fallback-delete",
			"workflowId": "offboarding-E100091", "runId": "r3",
		}, got)
	})

	// A third application the offboarding reports done but whose disable
	// no read-back confirmed: the ledger still shows the account enabled.
	record("pg", ledger.ActionCreated, "", "")
	t.Run("one application not verified", func(t *testing.T) {
		out, _, err := runCmd(t, testCfg, c, statusCmd(open), id)
		require.NoError(t, err)
		assert.Contains(t, out, "Employee E100091: leaver: access NOT removed everywhere, not verified in pg (disable not confirmed)\n")
		assert.Regexp(t, `pg\s+ana\.test\s+enabled\s+-\s+not verified: disable not confirmed\n`, out)
		assert.Regexp(t, `(?s)Access now \(from the access ledger\):\nAPPLICATION.*pg\s+ana\.test\s+-\s+enabled`, out)
	})
}

// utcTimes rewrites the RFC 3339 strings of m in UTC, as the database
// returns times in the local zone.
func utcTimes(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if s, ok := v.(string); ok {
			if ts, err := time.Parse(time.RFC3339Nano, s); err == nil {
				v = ts.UTC().Format(time.RFC3339Nano)
			}
		}
		out[k] = v
	}
	return out
}

func TestStatusWhenTheLedgerIsUnreadable(t *testing.T) {
	broken := func(context.Context, config.Config) (ledgerReader, func(), error) {
		return nil, nil, errors.New("connect to the store at postgres://x: refused")
	}
	t.Run("runs still shown", func(t *testing.T) {
		c := statusClient(t, onboardingRun(t))
		out, errOut, err := runCmd(t, testCfg, c, statusCmd(broken), "E100091", "-o", "json")
		require.NoError(t, err)
		assert.Contains(t, errOut, "warning: read the access ledger: connect to the store")
		var rep statusReport
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		assert.Contains(t, rep.LedgerError, "refused")
		assert.Equal(t, "onboarding completed (access ledger unreadable)", rep.Summary)
		require.Len(t, rep.Runs, 1)
	})
	t.Run("no runs either", func(t *testing.T) {
		c := statusClient(t)
		_, _, err := runCmd(t, testCfg, c, statusCmd(broken), "E100091")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no runs found for E100091, and the access ledger cannot be read")
	})
}

func TestStatusOfSomeoneUnknown(t *testing.T) {
	c := statusClient(t)
	_, _, err := runCmd(t, testCfg, c, statusCmd(opener(t, &fakeLedger{})), "E100091")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no runs and no access ledger entries for E100091")
}

func TestStatusRefusesABadEmployeeBeforeDialing(t *testing.T) {
	_, _, err := runCmd(t, testCfg, nil, statusCmd(opener(t, nil)), "E1' OR '1'='1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "employee ID must be E followed by 6 digits")
}

func TestStatusSummary(t *testing.T) {
	run := func(typ, status, state string, started time.Time) runInfo {
		return runInfo{runRow: runRow{WorkflowID: typ, Type: typ, Status: status, State: state, Started: started}}
	}
	account := holdingView{Holding: ledger.Holding{Application: "ldap", Account: "a", State: ledger.StateEnabled}}
	disabled := holdingView{Holding: ledger.Holding{Application: "ldap", Account: "a", State: ledger.StateDisabled}}
	grant := holdingView{Holding: ledger.Holding{Application: "ldap", Account: "a", Entitlement: "vpn", State: ledger.StateGranted}}
	ends := time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC)
	scheduled := run("Offboarding", "running", workflows.StateScheduled, t0.Add(time.Hour))
	scheduled.Offboarding = &workflows.OffboardingState{AccessEndsAt: ends}
	attention := run("Offboarding", "running", workflows.StateRetention, t0.Add(time.Hour))
	attention.NeedsAttention = true
	done := run("Offboarding", "completed", "completed", t0.Add(time.Hour))
	// How a leaver's accounts can stand (ledger.Removal decides the
	// flags; TestRemovals covers that).
	verifiedLDAP := ledger.Removal{Application: "ldap", Account: "a", State: ledger.StateDisabled, Entitlements: []string{},
		Removed: true, Verified: true, RequestedAt: t0, VerifiedAt: t0.Add(time.Second), VerifiedBy: ledger.VerifiedReadBack}
	legacyLDAP := ledger.Removal{Application: "ldap", Account: "b", State: ledger.StateDisabled, Entitlements: []string{}, Removed: true}
	heldLDAP := ledger.Removal{Application: "ldap", Account: "a", State: ledger.StateDisabled, Entitlements: []string{"vpn"},
		RequestedAt: t0, VerifiedAt: t0.Add(time.Second), VerifiedBy: ledger.VerifiedReadBack}
	enabledSCIM := ledger.Removal{Application: "scim", Account: "a", State: ledger.StateEnabled, Entitlements: []string{}}
	fallbackSCIM := ledger.Removal{Application: "scim", Account: "a", State: ledger.StateDeleted, Entitlements: []string{},
		Removed: true, Verified: true, RequestedAt: t0, VerifiedAt: t0.Add(time.Minute), VerifiedBy: ledger.VerifiedFallbackDelete}
	legacySCIM := fallbackSCIM
	legacySCIM.Verified, legacySCIM.RequestedAt, legacySCIM.VerifiedAt, legacySCIM.VerifiedBy = false, time.Time{}, time.Time{}, ""
	removing := run("Offboarding", "running", workflows.StateDisabling, t0.Add(time.Hour))
	deleting := run("Offboarding", "running", workflows.StateDeleting, t0.Add(time.Hour))
	lastChange := &entryView{Entry: ledger.Entry{Application: "scim", Action: ledger.ActionDeleted, At: t0}}
	tests := []struct {
		name     string
		rep      statusReport
		ledgerOK bool
		want     string
	}{
		{"joiner provisioning", statusReport{Runs: []runInfo{run("Onboarding", "running", "provisioning", t0)}}, true,
			"joiner: onboarding provisioning"},
		{"future joiner", statusReport{Runs: []runInfo{run("Onboarding", "running", workflows.StateWaitingStart, t0)}, Access: []holdingView{disabled}}, true,
			"joiner: provisioned, waiting for the start date"},
		{"active", statusReport{Runs: []runInfo{run("Onboarding", "completed", "completed", t0)}, Access: []holdingView{account, grant}}, true,
			"active: 1 account(s), 1 entitlement(s)"},
		{"failed joiner", statusReport{Runs: []runInfo{run("Onboarding", "failed", "failed", t0)}}, true,
			"joiner: onboarding failed, no access kept"},
		{"scheduled leaver", statusReport{Runs: []runInfo{scheduled, run("Onboarding", "completed", "completed", t0)}, Access: []holdingView{account}}, true,
			"leaver: offboarding scheduled, access ends " + localTime(ends)},
		{"leaver in retention needing attention", statusReport{Runs: []runInfo{attention}, Access: []holdingView{disabled},
			Removal: []ledger.Removal{verifiedLDAP}}, true,
			"leaver: access removed (verified), disabled accounts kept until deletion; needs attention: Offboarding"},
		{"leaver in retention, disable recorded before verification", statusReport{Runs: []runInfo{attention}, Access: []holdingView{disabled},
			Removal: []ledger.Removal{legacyLDAP}}, true,
			"leaver: access removed, not verified in ldap (disabled without read-back); disabled accounts kept until deletion; needs attention: Offboarding"},
		{"leaver deleting, verified", statusReport{Runs: []runInfo{deleting}, Removal: []ledger.Removal{verifiedLDAP, fallbackSCIM}}, true,
			"leaver: access removed (verified), disabled accounts kept until deletion"},
		{"leaver done, every application verified", statusReport{Runs: []runInfo{done}, Removal: []ledger.Removal{verifiedLDAP, fallbackSCIM}}, true,
			"leaver: access removed (verified)"},
		{"leaver done, one application not verified", statusReport{Runs: []runInfo{done}, Access: []holdingView{account},
			Removal: []ledger.Removal{verifiedLDAP, enabledSCIM}}, true,
			"leaver: access NOT removed everywhere, not verified in scim (disable not confirmed)"},
		{"leaver done, two not verified", statusReport{Runs: []runInfo{done}, Removal: []ledger.Removal{heldLDAP, legacySCIM}}, true,
			"leaver: access NOT removed everywhere, not verified in ldap (revoke of vpn not confirmed), scim (deleted without read-back)"},
		{"leaver done, two accounts in one application", statusReport{Runs: []runInfo{done}, Removal: []ledger.Removal{verifiedLDAP, legacyLDAP}}, true,
			"leaver: access removed, not verified in ldap/b (disabled without read-back)"},
		{"leaver done but the ledger still shows an entitlement", statusReport{Runs: []runInfo{done}, Access: []holdingView{disabled, grant},
			Removal: []ledger.Removal{heldLDAP}}, true,
			"leaver: access NOT removed everywhere, not verified in ldap (revoke of vpn not confirmed)"},
		{"leaver done, nothing in the ledger", statusReport{Runs: []runInfo{done}, Removal: []ledger.Removal{}}, true,
			"leaver: access removed, nothing in the access ledger to verify"},
		{"leaver done, ledger unreadable", statusReport{Runs: []runInfo{done}}, false,
			"leaver: access removed, not verified (access ledger unreadable)"},
		{"leaver still removing access", statusReport{Runs: []runInfo{removing}, Removal: []ledger.Removal{verifiedLDAP, enabledSCIM}}, true,
			"leaver: offboarding disabling, not verified in scim (disable not confirmed)"},
		{"leaver removing access, verified so far", statusReport{Runs: []runInfo{removing}, Removal: []ledger.Removal{verifiedLDAP}}, true,
			"leaver: offboarding disabling"},
		{"failed leaver with an account left", statusReport{Runs: []runInfo{run("Offboarding", "failed", "failed", t0)},
			Removal: []ledger.Removal{verifiedLDAP, enabledSCIM}}, true,
			"leaver: offboarding failed, access may remain, not verified in scim (disable not confirmed)"},
		{"leaver whose runs are gone, verified", statusReport{LastChange: lastChange, Removal: []ledger.Removal{fallbackSCIM}}, true,
			"no access held (last change: deleted in scim at " + localTime(t0) + "); removal verified"},
		{"leaver whose runs are gone, not verified", statusReport{LastChange: lastChange, Removal: []ledger.Removal{legacySCIM}}, true,
			"no access held (last change: deleted in scim at " + localTime(t0) + "); removal not verified in scim (deleted without read-back)"},
		{"retracted leaver is active again", statusReport{Runs: []runInfo{run("Offboarding", "canceled", "retracted", t0.Add(time.Hour)), run("Onboarding", "completed", "completed", t0)}, Access: []holdingView{account}}, true,
			"active: 1 account(s), 0 entitlement(s)"},
		{"failed leaver", statusReport{Runs: []runInfo{run("Offboarding", "failed", "failed", t0)}}, true,
			"leaver: offboarding failed, access may remain"},
		{"temporary grants", statusReport{Runs: []runInfo{run("TemporaryAccess", "running", "active", t0), run("TemporaryAccess", "completed", "expired", t0)}, Access: []holdingView{account}}, true,
			"active: 1 account(s), 0 entitlement(s); 1 temporary access run(s)"},
		{"nothing", statusReport{}, true, "no access held"},
		{"ledger unreadable, no onboarding", statusReport{Runs: []runInfo{run("TemporaryAccess", "completed", "expired", t0)}}, false,
			"no onboarding run found (access ledger unreadable)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, statusSummary(tt.rep, tt.ledgerOK))
		})
	}
}
