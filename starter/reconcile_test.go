package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/mocks"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/reconcile"
	"github.com/provisio-dev/provisio/workflows"
)

// itemList is a reconcileItems with fixed items.
type itemList []reconcile.Item

func (l itemList) Items(context.Context, string, reconcile.ItemQuery) ([]reconcile.Item, error) {
	return l, nil
}

func reconcileCmdWith(items itemList) func(*rootOptions) *cobra.Command {
	return func(o *rootOptions) *cobra.Command {
		return newReconcileCmdWith(&reconcileCmd{
			opts: o, now: func() time.Time { return t0 }, terminal: func(io.Writer) bool { return false }, poll: time.Millisecond,
			open: func(context.Context, config.Config) (reconcileItems, func(), error) { return items, func() {}, nil },
		})
	}
}

func TestReconcileRefusesBadInputBeforeDialing(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--cap", "-1"}, "--cap must not be negative"},
		{[]string{"--cap-percent", "101"}, "--cap-percent must be 0 to 100"},
		{[]string{"--employee", "E1' OR '1'='1"}, "--employee must be an employee ID"},
		{[]string{"--app", "LDAP!"}, "--app: \"LDAP!\" is not an application name"},
		{[]string{"--source", "Bad Feed"}, "--source"},
		{[]string{"--page-size", "5001"}, "--page-size must be 0 to 5000"},
		{[]string{"--approval-timeout", "-1h"}, "--approval-timeout"},
		{[]string{"--account", " "}, "--account"},
		{[]string{"-o", "yaml"}, "--output: want table or json"},
		{[]string{"schedule", "--every", "1m"}, "--every must be at least 5m0s"},
		{[]string{"schedule", "--every", "6h", "--cap", "-2"}, "--cap must not be negative"},
		{[]string{"approve", "onboarding-E100001", "--approver", "E100015"}, "RUN-ID: want a reconciliation run ID"},
		{[]string{"approve", workflows.ReconcileScheduleID, "--approver", "E100015"}, "RUN-ID"},
		{[]string{"reject", "reconcile-20261125T090000Z", "--approver", "root"}, "--approver must be an employee ID"},
		{[]string{"approve", "reconcile-20261125T090000Z"}, `required flag(s) "approver" not set`},
		{[]string{"report", "x y"}, "RUN-ID"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err := runWithClient(t, nil, reconcileCmdWith(nil), tt.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestReconcileStartsARunWithItsInput(t *testing.T) {
	c := mocks.NewClient(t)
	c.On("Close").Return()
	run := mocks.NewWorkflowRun(t)
	run.On("GetRunID").Return("r1")
	var opts client.StartWorkflowOptions
	var in workflows.ReconcileInput
	c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		opts = args.Get(1).(client.StartWorkflowOptions)
		in = args.Get(3).(workflows.ReconcileInput)
	}).Return(run, nil)
	out, _, err := runWithClient(t, c, reconcileCmdWith(nil), "--fix", "--app", "ldap", "--cap-percent", "2",
		"--source", "hr", "--employee", "E100001", "--account", "svc-x")
	require.NoError(t, err)
	assert.Equal(t, "reconcile-20261125T090000Z", opts.ID, "the ID is the start time")
	assert.Equal(t, "test", opts.TaskQueue)
	assert.Equal(t, workflows.ReconcileInput{Apps: []string{"ldap"}, Fix: true, CapPercent: 2, Source: "hr",
		Scope: activities.ReconcileScope{EmployeeIDs: []string{"E100001"}, Accounts: []string{"svc-x"}}}, in)
	assert.Contains(t, out, "Started reconciliation reconcile-20261125T090000Z (fix mode)")
}

// closedRun mocks a finished run with result res.
func closedRun(t *testing.T, res workflows.ReconcileResult) *mocks.Client {
	c := mocks.NewClient(t)
	c.On("Close").Return()
	c.On("DescribeWorkflow", mock.Anything, res.RunID, "").Return(&client.WorkflowExecutionDescription{
		RawResponse: &workflowservice.DescribeWorkflowExecutionResponse{
			WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
				Execution: &commonpb.WorkflowExecution{WorkflowId: res.RunID, RunId: "r1"},
				Status:    enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED,
			}}}, nil)
	run := mocks.NewWorkflowRun(t)
	run.On("Get", mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		*args.Get(1).(*workflows.ReconcileResult) = res
	}).Return(nil)
	c.On("GetWorkflow", mock.Anything, res.RunID, "").Return(run)
	return c
}

var sampleResult = workflows.ReconcileResult{
	RunID: "reconcile-20261125T090000Z", Mode: "fix", Status: workflows.ReconcileCompleted,
	Apps: []workflows.AppReconcile{
		{ScanResult: activities.ScanResult{App: "ldap", Accounts: 120, Skipped: 1, Summary: reconcile.Summary{
			Counts: map[reconcile.Class]int{reconcile.ClassOrphan: 2, reconcile.ClassUnmanaged: 1}, Fixes: 2,
			Samples: []reconcile.Item{{Class: reconcile.ClassOrphan, Application: "ldap", Account: "zombie", EmployeeID: "E900001",
				Action: reconcile.ActionDisable, Reason: "no active HR record for E900001"}},
		}}},
		{ScanResult: activities.ScanResult{App: "scim"}, Error: "scim ListAccounts: Unavailable: connection refused"},
	},
	PlannedFixes: 2, Cap: 50, Fixed: 2,
}

func TestReconcileReportPrintsCountsAndSamples(t *testing.T) {
	out, _, err := runWithClient(t, closedRun(t, sampleResult), reconcileCmdWith(nil), "report", sampleResult.RunID)
	require.NoError(t, err)
	for _, want := range []string{
		"Reconciliation reconcile-20261125T090000Z (fix mode): completed",
		"ldap         120       2       0        0       1          1        2",
		"scim         -         -       -        -       -          -        -",
		"Scan of scim failed (nothing there is fixed): scim ListAccounts: Unavailable: connection refused",
		"TOTAL                  2       0        0       1          1        2",
		"orphan  ldap         zombie   E900001   -            disable  no active HR record for E900001",
		"Fixes: 2 planned, cap 50; 2 made, 0 failed, 0 skipped",
		"starter reconcile report reconcile-20261125T090000Z --output json",
	} {
		assert.Contains(t, out, want)
	}
}

func TestReconcileReportJSONListsEveryItem(t *testing.T) {
	items := itemList{
		{Seq: 1, Class: reconcile.ClassOrphan, Application: "ldap", Account: "zombie", Status: reconcile.StatusFixed},
		{Seq: 2, Class: reconcile.ClassOrphan, Application: "ldap", Account: "ghost", Status: reconcile.StatusFixed},
		{Seq: 3, Class: reconcile.ClassUnmanaged, Application: "ldap", Account: "svc-x", Status: reconcile.StatusFound},
	}
	out, _, err := runWithClient(t, closedRun(t, sampleResult), reconcileCmdWith(items), "report", sampleResult.RunID, "-o", "json")
	require.NoError(t, err)
	var rep struct {
		RunID  string           `json:"runId"`
		State  string           `json:"state"`
		Fixed  int              `json:"fixed"`
		Items  []reconcile.Item `json:"items"`
		Totals map[string]int   `json:"totals"`
	}
	require.NoError(t, json.NewDecoder(bytes.NewBufferString(out)).Decode(&rep), out)
	assert.Equal(t, sampleResult.RunID, rep.RunID)
	assert.Equal(t, workflows.ReconcileCompleted, rep.State)
	assert.Equal(t, 2, rep.Fixed)
	assert.Equal(t, []reconcile.Item(items), rep.Items, "every item, not only the samples")
}

func TestReconcileApproveSendsTheDecision(t *testing.T) {
	c := mocks.NewClient(t)
	c.On("Close").Return()
	h := mocks.NewWorkflowUpdateHandle(t)
	h.On("Get", mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		*args.Get(1).(*workflows.ReconcileState) = workflows.ReconcileState{Result: workflows.ReconcileResult{PlannedFixes: 60}}
	}).Return(nil)
	var opts client.UpdateWorkflowOptions
	c.On("UpdateWorkflow", mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
		opts = args.Get(1).(client.UpdateWorkflowOptions)
	}).Return(h, nil)
	out, _, err := runWithClient(t, c, reconcileCmdWith(nil), "approve", "reconcile-20261125T090000Z", "--approver", "E100015", "--comment", "checked")
	require.NoError(t, err)
	assert.Equal(t, "reconcile-20261125T090000Z", opts.WorkflowID)
	assert.Equal(t, workflows.UpdateApproveFixes, opts.UpdateName)
	assert.Equal(t, []any{workflows.FixDecision{ApproverID: "E100015", Approve: true, Comment: "checked"}}, opts.Args)
	assert.Contains(t, out, "Approved: reconcile-20261125T090000Z makes its 60 planned fixes")
}

func TestProgressLine(t *testing.T) {
	scanning := workflows.ReconcileState{State: workflows.StateScanning, Result: workflows.ReconcileResult{
		Apps: []workflows.AppReconcile{{ScanResult: activities.ScanResult{App: "scim", Accounts: 40}}}}}
	desc, n := progressLine(scanning, []activities.ScanProgress{{App: "ldap", Accounts: 5000, People: 10}})
	assert.Equal(t, "scanning ldap 5000 accounts, 10 people; scim done", desc)
	assert.Equal(t, 5040, n)

	fixing := workflows.ReconcileState{State: workflows.StateFixing, Result: workflows.ReconcileResult{PlannedFixes: 50, Fixed: 10, Failed: 1, Skipped: 2}}
	desc, n = progressLine(fixing, nil)
	assert.Equal(t, "fixing 13/50", desc)
	assert.Equal(t, 13, n)
}

func TestReconcileWaitShowsProgressThenTheHeldReport(t *testing.T) {
	c := mocks.NewClient(t)
	c.On("Close").Return()
	run := mocks.NewWorkflowRun(t)
	c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(run, nil)
	beat, err := converter.GetDefaultDataConverter().ToPayloads(activities.ScanProgress{App: "ldap", Phase: activities.PhaseAccounts, Accounts: 4000})
	require.NoError(t, err)
	c.On("DescribeWorkflow", mock.Anything, "reconcile-20261125T090000Z", "").Return(&client.WorkflowExecutionDescription{
		RawResponse: &workflowservice.DescribeWorkflowExecutionResponse{
			WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
				Execution: &commonpb.WorkflowExecution{WorkflowId: "reconcile-20261125T090000Z", RunId: "r1"},
				Status:    enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
			},
			PendingActivities: []*workflowpb.PendingActivityInfo{{HeartbeatDetails: beat}},
		}}, nil)
	states := []workflows.ReconcileState{
		{State: workflows.StateScanning, Result: workflows.ReconcileResult{RunID: "reconcile-20261125T090000Z", Mode: "fix"}},
		{State: workflows.StateWaitingApproval, Result: workflows.ReconcileResult{RunID: "reconcile-20261125T090000Z", Mode: "fix", PlannedFixes: 80, Cap: 50},
			ApprovalDeadline: t0.Add(24 * time.Hour)},
	}
	calls := 0
	v := mocks.NewEncodedValue(t)
	v.On("Get", mock.Anything).Run(func(args mock.Arguments) {
		*args.Get(0).(*workflows.ReconcileState) = states[min(calls, len(states)-1)]
		calls++
	}).Return(nil)
	c.On("QueryWorkflow", mock.Anything, "reconcile-20261125T090000Z", "", workflows.QueryState).Return(v, nil)

	var out, errOut bytes.Buffer
	opts := &rootOptions{out: &out, errOut: &errOut, cfg: config.Config{TaskQueue: "test"},
		dial: func(context.Context, config.Config) (client.Client, error) { return c, nil }}
	cmd := newReconcileCmdWith(&reconcileCmd{opts: opts, now: func() time.Time { return t0 }, poll: time.Millisecond,
		terminal: func(io.Writer) bool { return true }})
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs([]string{"--fix", "--wait"})
	cmd.SetContext(context.Background())
	err = cmd.Execute()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "80 planned fixes exceed the cap of 50; approve with `starter reconcile approve reconcile-20261125T090000Z --approver ID`")
	assert.Contains(t, errOut.String(), "scanning ldap 4000 accounts, 0 people", "the progress bar shows the scan's heartbeat")
	assert.Contains(t, out.String(), "Fixes: 80 planned, cap 50; 0 made, 0 failed, 0 skipped")
	assert.Contains(t, out.String(), "Waiting for approval until 2026-11-26T09:00:00Z")
}
