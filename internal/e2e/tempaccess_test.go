package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/app"
	"github.com/provisio-dev/provisio/workflows"
)

// Approvers of postgres/prod_admin for an engineer reporting to E100012,
// by the demo policy: the manager, then the owner of postgres.
const (
	tempManager = "E100012"
	tempOwner   = "E100016"
)

// TestTemporaryAccessEndToEnd hires an engineer, requests the
// temporary-only postgres/prod_admin for a day (capped to the policy's 8h),
// approves it as manager then owner through the CLI, checks the role
// membership really exists, revokes early and checks it is gone.
func TestTemporaryAccessEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	employee := newEmployeeID(t)
	person := newTestPerson(employee, "Tempo", "Rary")
	person.ManagerID = tempManager
	// The worker routes approvals from the HR roster: add the person to a
	// copy of the demo roster.
	roster, err := os.ReadFile(cfg.RosterFile)
	require.NoError(t, err)
	row := strings.Join([]string{person.EmployeeID, person.GivenName, person.FamilyName, person.Email, person.Department,
		person.Title, person.ManagerID, person.Location, person.EmploymentType, person.StartDate.String(), "", person.Status}, ",")
	cfg.RosterFile = filepath.Join(t.TempDir(), "roster.csv")
	require.NoError(t, os.WriteFile(cfg.RosterFile, append(roster, []byte(row+"\n")...), 0o600))

	c, deps := startWorker(t, cfg)
	bin := buildStarter(t)
	hireID := workflows.OnboardingID(employee)
	wfID := workflows.TemporaryAccessID(employee, "postgres", "prod_admin")
	reqID := workflows.ApprovalRequestID(wfID, "postgres", "prod_admin")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = c.TerminateWorkflow(ctx, wfID, "", "e2e cleanup")
		cleanupHire(t, c, deps.Activities.Connectors, hireID)
	})

	file := writePerson(t, person)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	out, err := runCLI(t, bin, cfg, "hire", "-f", file, "--wait")
	require.NoError(t, err, out)
	var hired workflows.OnboardingResult
	require.NoError(t, c.GetWorkflow(ctx, hireID, "").Get(ctx, &hired))

	// Refused before anything starts.
	for _, args := range [][]string{
		{"request-access", employee, "postgres/prod_admin", "--duration", "-1d"},
		{"request-access", employee, "prod_admin"},
	} {
		out, err := runCLI(t, bin, cfg, args...)
		require.Error(t, err, "%v must be refused: %s", args, out)
	}

	out, err = runCLI(t, bin, cfg, "request-access", employee, "postgres/prod_admin", "--duration", "1d", "--justification", "e2e incident")
	require.NoError(t, err, out)
	assert.Contains(t, out, wfID)
	assert.Contains(t, out, reqID)
	out, err = runCLI(t, bin, cfg, "request-access", employee, "postgres/prod_admin")
	require.NoError(t, err, out)
	assert.Contains(t, out, "nothing new started")

	// The manager, then the owner.
	require.Eventually(t, func() bool {
		out, err := runCLI(t, bin, cfg, "pending", "--approver", tempManager, "-o", "json")
		return err == nil && strings.Contains(out, reqID)
	}, time.Minute, 500*time.Millisecond, "the manager sees %s", reqID)
	out, err = runCLI(t, bin, cfg, "approve", reqID, "--as", tempManager)
	require.NoError(t, err, out)
	assert.Contains(t, out, "waits for "+tempOwner)
	out, err = runCLI(t, bin, cfg, "approve", reqID, "--as", tempOwner)
	require.NoError(t, err, out)

	var st workflows.TemporaryAccessState
	require.Eventually(t, func() bool {
		v, err := c.QueryWorkflow(ctx, wfID, "", workflows.QueryState)
		return err == nil && v.Get(&st) == nil && st.State == workflows.StateActive
	}, time.Minute, 500*time.Millisecond, "the grant becomes active")
	assert.True(t, st.Capped, "1d is capped to the policy's 8h")
	assert.Equal(t, 8*time.Hour, st.ExpiresAt.Sub(st.GrantedAt))
	assert.Equal(t, time.Hour, st.ExpiresAt.Sub(st.RemindAt))

	pg := deps.Activities.Connectors["postgres"]
	got, err := pg.GetAccount(ctx, connectors.AccountRequest{Username: hired.Username})
	require.NoError(t, err)
	assert.Contains(t, got.Entitlements, "prod_admin", "the role membership really exists")

	// The grant already reaches the policy's maximum ahead: no extension
	// fits, and the validator says so without a trace in the history.
	out, err = runCLI(t, bin, cfg, "extend-access", employee, "postgres/prod_admin", "--duration", "1h")
	require.Error(t, err, out)
	assert.Contains(t, out, "more than the policy's 8h")

	out, err = runCLI(t, bin, cfg, "revoke-access", employee, "postgres/prod_admin", "--as", tempManager, "--reason", "incident closed")
	require.NoError(t, err, out)
	assert.Contains(t, out, workflows.StateRevoked)

	var res workflows.TemporaryAccessResult
	require.NoError(t, c.GetWorkflow(ctx, wfID, "").Get(ctx, &res))
	assert.Equal(t, workflows.StateRevoked, res.State)
	assert.Equal(t, tempManager, res.EndedBy)
	assert.Empty(t, res.Extensions)
	got, err = pg.GetAccount(ctx, connectors.AccountRequest{Username: hired.Username})
	require.NoError(t, err)
	assert.False(t, slices.Contains(got.Entitlements, "prod_admin"), "revoked: %v", got.Entitlements)

	out, err = runCLI(t, bin, cfg, "revoke-access", employee, "postgres/prod_admin")
	require.Error(t, err, out)
	assert.Contains(t, out, fmt.Sprintf("no running %s", wfID))

	replayer := worker.NewWorkflowReplayer()
	app.RegisterWorkflows(replayer)
	require.NoError(t, replayer.ReplayWorkflowHistory(nil, history(t, c, wfID)))
	recordHistory(t, c, wfID, "", "tempaccess-v1")
}
