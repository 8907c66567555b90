package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/temporal"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/workflows"
)

// runWithClient runs one command against c, a mocked Temporal client; a nil
// c fails the test if the command dials at all.
func runWithClient(t *testing.T, c client.Client, newCmd func(*rootOptions) *cobra.Command, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	opts := &rootOptions{out: &out, errOut: &errOut, cfg: config.Config{TaskQueue: "test"},
		dial: func(context.Context, config.Config) (client.Client, error) {
			if c == nil {
				t.Fatal("the command must refuse its input before dialing")
			}
			return c, nil
		}}
	cmd := newCmd(opts)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	cmd.SetContext(context.Background())
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func waitingRequest(id, emp string, steps ...workflows.ApprovalStepState) workflows.ApprovalRequest {
	return workflows.ApprovalRequest{ID: "onboarding-" + emp + "/" + id, EmployeeID: emp, Application: "scim", Entitlement: id[len("scim/"):],
		State: workflows.RequestWaiting, Steps: steps, RequestedAt: t0}
}

func stepState(kind, approver, escalation string) workflows.ApprovalStepState {
	return workflows.ApprovalStepState{
		ApprovalStep:         activities.ApprovalStep{Kind: kind, ApproverID: approver, EscalateAfter: 72 * time.Hour, ExpireAfter: 168 * time.Hour},
		State:                workflows.StepWaiting,
		EscalationApproverID: escalation,
		StartedAt:            t0, EscalatesAt: t0.Add(72 * time.Hour), ExpiresAt: t0.Add(168 * time.Hour),
	}
}

func TestPendingListsWhatWaitsForTheApprover(t *testing.T) {
	c := mocks.NewClient(t)
	c.On("Close").Return()
	c.On("ListWorkflow", mock.Anything, &workflowservice.ListWorkflowExecutionsRequest{
		Query: "WaitingApprovers = 'E100008' AND ExecutionStatus = 'Running'",
	}).Return(&workflowservice.ListWorkflowExecutionsResponse{Executions: []*workflowpb.WorkflowExecutionInfo{
		{Execution: &commonpb.WorkflowExecution{WorkflowId: "onboarding-E100091", RunId: "r1"}},
		{Execution: &commonpb.WorkflowExecution{WorkflowId: "onboarding-E100092", RunId: "r2"}},
	}}, nil)
	states := map[string]workflows.ApprovalsState{
		"onboarding-E100091": {Planned: true, Requests: []workflows.ApprovalRequest{
			waitingRequest("scim/finance-admins", "E100091", stepState("manager", "E100008", ""), stepState("owner", "E100088", "")),
			// Waits for someone else: not listed.
			waitingRequest("scim/sales", "E100091", stepState("owner", "E100088", "")),
		}},
		"onboarding-E100092": {Planned: true, Requests: []workflows.ApprovalRequest{
			// Escalated to E100008 from E100009.
			waitingRequest("scim/finance-admins", "E100092", stepState("manager", "E100009", "E100008")),
		}},
	}
	for wf, st := range states {
		v := mocks.NewEncodedValue(t)
		v.On("Get", mock.Anything).Run(func(args mock.Arguments) {
			*args.Get(0).(*workflows.ApprovalsState) = st
		}).Return(nil)
		c.On("QueryWorkflow", mock.Anything, wf, mock.Anything, workflows.QueryApprovals).Return(v, nil)
	}

	t.Run("table", func(t *testing.T) {
		out, _, err := runWithClient(t, c, newPendingCmd, "--approver", "E100008")
		require.NoError(t, err)
		assert.Contains(t, out, "Waiting for E100008: 2 request(s)")
		assert.Contains(t, out, "onboarding-E100091/scim/finance-admins  E100091")
		assert.Contains(t, out, "1/2 manager")
		assert.Contains(t, out, "1/1 manager (escalated to you)")
		assert.NotContains(t, out, "scim/sales")
		assert.Contains(t, out, "starter approve REQUEST --as E100008")
	})
	t.Run("json", func(t *testing.T) {
		out, _, err := runWithClient(t, c, newPendingCmd, "--approver", "E100008", "-o", "json")
		require.NoError(t, err)
		var rep pendingReport
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		require.Len(t, rep.Requests, 2)
		assert.Equal(t, pendingRequest{
			RequestID: "onboarding-E100091/scim/finance-admins", WorkflowID: "onboarding-E100091", EmployeeID: "E100091",
			Application: "scim", Entitlement: "finance-admins", Step: 1, Steps: 2, Kind: "manager", As: "approver",
			WaitingSince: t0, EscalatesAt: t0.Add(72 * time.Hour), ExpiresAt: t0.Add(168 * time.Hour),
		}, rep.Requests[0])
		assert.Equal(t, "escalation", rep.Requests[1].As)
	})
}

func TestPendingRefusesABadApproverBeforeQuerying(t *testing.T) {
	_, _, err := runWithClient(t, nil, newPendingCmd, "--approver", "E1' OR 'x'='x")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "--approver must be an employee ID")
}

func TestApproveAndReject(t *testing.T) {
	const id = "onboarding-E100091/scim/finance-admins"
	afterManager := waitingRequest("scim/finance-admins", "E100091", stepState("manager", "E100008", ""), stepState("owner", "E100088", ""))
	afterManager.Steps[0].State = workflows.StepApproved
	afterManager.Step = 1
	rejected := waitingRequest("scim/finance-admins", "E100091", stepState("manager", "E100008", ""), stepState("owner", "E100088", ""))
	rejected.State, rejected.Reason = workflows.RequestRejected, "rejected by E100008: wrong team"

	cases := []struct {
		name    string
		cmd     func(*rootOptions) *cobra.Command
		args    []string
		send    *workflows.DecideInput // nil: refused before dialing
		result  workflows.DecideResult
		sendErr error // from UpdateWorkflow
		getErr  error // from the handle
		wantOut []string
		wantErr string
	}{
		{
			name: "approve, next step", cmd: newApproveCmd, args: []string{id, "--as", "E100008", "--comment", "ok"},
			send:    &workflows.DecideInput{RequestID: id, ApproverID: "E100008", Approve: true, Comment: "ok"},
			result:  workflows.DecideResult{Request: afterManager},
			wantOut: []string{"Approved " + id + " as E100008 (manager step).", "next: step 2 of 2 (owner) waits for E100088"},
		},
		{
			name: "reject", cmd: newRejectCmd, args: []string{id, "--as", "E100008", "--comment", "wrong team"},
			send:    &workflows.DecideInput{RequestID: id, ApproverID: "E100008", Comment: "wrong team"},
			result:  workflows.DecideResult{Request: rejected},
			wantOut: []string{"Rejected " + id, "will not be granted to E100091 (rejected by E100008: wrong team)"},
		},
		{
			name: "wrong approver: the validator's reason", cmd: newApproveCmd, args: []string{id, "--as", "E100042"},
			send:    &workflows.DecideInput{RequestID: id, ApproverID: "E100042", Approve: true},
			getErr:  temporal.NewApplicationError("E100042 may not decide approval request "+id+": step 1 of 2 (manager) waits for E100008", ""),
			wantErr: "approval refused: E100042 may not decide approval request " + id,
		},
		{
			name: "run not found", cmd: newRejectCmd, args: []string{"onboarding-E999999/scim/x", "--as", "E100008"},
			send:    &workflows.DecideInput{RequestID: "onboarding-E999999/scim/x", ApproverID: "E100008"},
			sendErr: serviceerror.NewNotFound("workflow not found"),
			wantErr: "no run onboarding-E999999",
		},
		{
			name: "run ended", cmd: newRejectCmd, args: []string{"onboarding-E999999/scim/x", "--as", "E100008"},
			send:    &workflows.DecideInput{RequestID: "onboarding-E999999/scim/x", ApproverID: "E100008"},
			sendErr: serviceerror.NewNotFound("workflow execution already completed"),
			wantErr: "its run onboarding-E999999 has ended",
		},
		{
			name: "malformed request ID", cmd: newApproveCmd, args: []string{"finance-admins", "--as", "E100008"},
			wantErr: "want WORKFLOW/APPLICATION/ENTITLEMENT",
		},
		{
			name: "malformed approver", cmd: newApproveCmd, args: []string{id, "--as", "boss"},
			wantErr: "--as must be an employee ID",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c client.Client
			if tc.send != nil {
				mc := mocks.NewClient(t)
				mc.On("Close").Return()
				want := client.UpdateWorkflowOptions{
					WorkflowID: id[:len("onboarding-E100091")], UpdateName: workflows.UpdateDecide,
					Args: []any{*tc.send}, WaitForStage: client.WorkflowUpdateStageCompleted,
				}
				if tc.sendErr != nil {
					want.WorkflowID = "onboarding-E999999"
					mc.On("UpdateWorkflow", mock.Anything, want).Return(nil, tc.sendErr)
				} else {
					h := mocks.NewWorkflowUpdateHandle(t)
					h.On("Get", mock.Anything, mock.Anything).Run(func(args mock.Arguments) {
						*args.Get(1).(*workflows.DecideResult) = tc.result
					}).Return(tc.getErr)
					mc.On("UpdateWorkflow", mock.Anything, want).Return(h, nil)
				}
				c = mc
			}
			out, _, err := runWithClient(t, c, tc.cmd, tc.args...)
			if tc.wantErr != "" {
				require.Error(t, err, "a refused decision exits non-zero")
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			for _, w := range tc.wantOut {
				assert.Contains(t, out, w)
			}
		})
	}
}

func TestDecisionErrorTimeout(t *testing.T) {
	err := decisionError(workflows.DecideInput{RequestID: "a/b/c", Approve: true}, "a", context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "is the worker running?")
	err = decisionError(workflows.DecideInput{RequestID: "a/b/c"}, "a", errors.New("boom"))
	assert.Contains(t, err.Error(), "rejection of a/b/c: boom")
}
