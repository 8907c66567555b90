package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/app"
	"github.com/provisio-dev/provisio/workflows"
)

// Approvers of scim/finance-admins for a controller reporting to E100008,
// by the demo policy: the manager, then the SCIM application's owner.
const (
	e2eManager = "E100008"
	e2eOwner   = "E100088"
	e2eOther   = "E100042"
)

// pendingJSON is the part of `starter pending -o json` the test reads.
type pendingJSON struct {
	Requests []pendingEntry `json:"requests"`
}

type pendingEntry struct {
	RequestID  string `json:"requestId"`
	EmployeeID string `json:"employeeId"`
	Step       int    `json:"step"`
	Kind       string `json:"kind"`
}

// TestApprovalEndToEnd hires a controller whose plan gates
// scim/finance-admins behind manager-then-owner approval: the rest is
// provisioned at once, the request shows up for the manager through one
// visibility query, wrong approvers are refused without a trace in the
// history, and after both approvals the group is really held in SCIM.
func TestApprovalEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	c, deps := startWorker(t, cfg)
	bin := buildStarter(t)
	employee := newEmployeeID(t)
	wfID := workflows.OnboardingID(employee)
	reqID := workflows.ApprovalRequestID(wfID, "scim", "finance-admins")

	person := newTestPerson(employee, "Grace", "Äpprover")
	person.Department, person.Title, person.ManagerID = "Finance", "Controller", e2eManager
	file := writePerson(t, person)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t.Cleanup(func() { cleanupHire(t, c, deps.Activities.Connectors, wfID) })

	out, err := runCLI(t, bin, cfg, "hire", "-f", file)
	require.NoError(t, err, out)

	// The manager finds the request with one visibility query.
	var pending pendingJSON
	require.Eventually(t, func() bool {
		out, err := runCLI(t, bin, cfg, "pending", "--approver", e2eManager, "-o", "json")
		if err != nil || json.Unmarshal([]byte(out), &pending) != nil {
			return false
		}
		return slices.ContainsFunc(pending.Requests, func(r pendingEntry) bool {
			return r.RequestID == reqID && r.EmployeeID == employee && r.Step == 1 && r.Kind == "manager"
		})
	}, time.Minute, 500*time.Millisecond, "pending --approver %s lists %s", e2eManager, reqID)
	out, err = runCLI(t, bin, cfg, "pending", "--approver", e2eManager)
	require.NoError(t, err, out)
	assert.Contains(t, out, reqID)
	assert.Contains(t, out, "1/2 manager")

	// Birthright access went ahead while the approval waits.
	var st workflows.OnboardingState
	require.Eventually(t, func() bool {
		v, err := c.QueryWorkflow(ctx, wfID, "", workflows.QueryState)
		return err == nil && v.Get(&st) == nil && st.State == workflows.StateWaitingApproval
	}, time.Minute, 500*time.Millisecond)
	scimAcct := accountIn(t, st.Accounts, "scim")
	assert.Equal(t, []string{"all-staff"}, scimAcct.Entitlements)
	assert.Equal(t, []string{e2eManager}, st.WaitingApprovers)

	// Refused, with the reason, and with a non-zero exit code.
	refusals := []struct {
		args []string
		want string
	}{
		{[]string{"approve", reqID, "--as", e2eOwner}, "not waiting for " + e2eOwner + " yet"},
		{[]string{"approve", reqID, "--as", e2eOther}, e2eOther + " may not decide approval request " + reqID},
		{[]string{"reject", reqID, "--as", employee}, "may not decide on their own access"},
		{[]string{"approve", wfID + "/scim/sales", "--as", e2eManager}, "unknown approval request"},
	}
	for _, r := range refusals {
		out, err := runCLI(t, bin, cfg, r.args...)
		require.Error(t, err, "%v must be refused: %s", r.args, out)
		assert.Contains(t, out, r.want)
	}
	assert.Zero(t, updateEvents(t, c, wfID), "refused decisions leave no trace in the history")

	out, err = runCLI(t, bin, cfg, "approve", reqID, "--as", e2eManager, "--comment", "e2e test")
	require.NoError(t, err, out)
	assert.Contains(t, out, "next: step 2 of 2 (owner) waits for "+e2eOwner)

	require.Eventually(t, func() bool {
		out, err := runCLI(t, bin, cfg, "pending", "--approver", e2eOwner, "-o", "json")
		return err == nil && strings.Contains(out, reqID)
	}, time.Minute, 500*time.Millisecond, "the owner sees the request next")

	out, err = runCLI(t, bin, cfg, "approve", reqID, "--as", e2eOwner)
	require.NoError(t, err, out)
	assert.Contains(t, out, "is being granted to "+employee)

	var res workflows.OnboardingResult
	require.NoError(t, c.GetWorkflow(ctx, wfID, "").Get(ctx, &res))
	require.Len(t, res.Approvals, 1)
	assert.Equal(t, workflows.RequestGranted, res.Approvals[0].State)
	assert.Equal(t, e2eManager, res.Approvals[0].Steps[0].DecidedBy)
	assert.Equal(t, "e2e test", res.Approvals[0].Steps[0].Comment)
	assert.Equal(t, e2eOwner, res.Approvals[0].Steps[1].DecidedBy)
	assert.Contains(t, accountIn(t, res.Accounts, "scim").Entitlements, "finance-admins")
	assert.Equal(t, 2, updateEvents(t, c, wfID), "the two accepted decisions are in the history")

	// The group is really held in the SCIM application.
	got, err := deps.Activities.Connectors["scim"].GetAccount(ctx, connectors.AccountRequest{Username: res.Username})
	require.NoError(t, err)
	assert.Contains(t, got.Entitlements, "finance-admins")
	assert.Contains(t, got.Entitlements, "all-staff")

	// The history replays against this code, decisions included, and
	// under the replayer's own workflow ID, as the replay test runs it.
	replayer := worker.NewWorkflowReplayer()
	app.RegisterWorkflows(replayer)
	require.NoError(t, replayer.ReplayWorkflowHistory(nil, history(t, c, wfID)))
	recordHistory(t, c, wfID, "", "onboarding-approval-v1")

	// The request is closed now.
	out, err = runCLI(t, bin, cfg, "reject", reqID, "--as", e2eOwner)
	require.Error(t, err, out)
	assert.Contains(t, out, "refused")
}

func accountIn(t *testing.T, accts []workflows.AccountResult, app string) workflows.AccountResult {
	t.Helper()
	for _, a := range accts {
		if a.Application == app {
			return a
		}
	}
	require.Failf(t, "no account", "no account in %s among %v", app, accts)
	return workflows.AccountResult{}
}

// history is a run's full history.
func history(t *testing.T, c client.Client, wfID string) *historypb.History {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	it := c.GetWorkflowHistory(ctx, wfID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, e)
	}
	return h
}

// updateEvents counts the accepted updates in a run's history.
func updateEvents(t *testing.T, c client.Client, wfID string) int {
	t.Helper()
	n := 0
	for _, e := range history(t, c, wfID).GetEvents() {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
			n++
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_REJECTED:
			t.Errorf("a rejected update was recorded: %v", e)
		}
	}
	return n
}

// cleanupHire ends the run if it still waits and removes the person's
// accounts from every application.
func cleanupHire(t *testing.T, c client.Client, conns map[string]connectors.Connector, wfID string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var st workflows.OnboardingState
	if v, err := c.QueryWorkflow(ctx, wfID, "", workflows.QueryState); err == nil {
		_ = v.Get(&st)
	}
	_ = c.TerminateWorkflow(ctx, wfID, "", "e2e cleanup")
	if st.Username == "" {
		t.Logf("cleanup: no username known for %s", wfID)
		return
	}
	for _, conn := range conns {
		_, _ = conn.DeleteAccount(ctx, connectors.AccountRequest{Username: st.Username})
	}
}
