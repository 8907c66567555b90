package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/store"
	"github.com/provisio-dev/provisio/workflows"
)

// TestLedgerRecordsAJoinerAndALeaver hires a person through the CLI and
// terminates them with the kill switch, then reads the access ledger the
// activities wrote: every account created and entitlement granted, with
// the rules, policy version and run behind it, then every account
// disabled and entitlement revoked by the leaver, and nothing written
// twice. What the person holds afterwards is disabled accounts only.
func TestLedgerRecordsAJoinerAndALeaver(t *testing.T) {
	cfg := testConfig(t)
	c, deps := startWorker(t, cfg)
	bin := buildStarter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pool, err := store.Open(ctx, cfg.StoreURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	lg := ledger.New(pool)

	// The ledger is never cleaned (it is append-only): use an employee ID
	// no earlier run left entries for.
	employee := newEmployeeID(t)
	for {
		earlier, err := lg.Trail(ctx, employee, time.Time{})
		require.NoError(t, err)
		if len(earlier) == 0 {
			break
		}
		employee = newEmployeeID(t)
	}

	file := writePerson(t, newTestPerson(employee, "Led", "Ger"))
	out, err := runCLI(t, bin, cfg, "hire", "-f", file, "--wait")
	require.NoError(t, err, out)
	onbID := workflows.OnboardingID(employee)
	var hired workflows.OnboardingResult
	require.NoError(t, c.GetWorkflow(ctx, onbID, "").Get(ctx, &hired))
	username := hired.Username
	require.NotEmpty(t, username)
	offID := workflows.OffboardingID(employee)
	t.Cleanup(func() {
		_ = c.TerminateWorkflow(context.Background(), offID, "", "e2e cleanup")
		for _, conn := range deps.Activities.Connectors {
			_, _ = conn.DeleteAccount(context.Background(), connectors.AccountRequest{Username: username})
		}
	})
	require.NotEmpty(t, hired.PolicyVersion)
	held := map[string][]string{}
	for _, a := range hired.Accounts {
		held[a.Application] = a.Entitlements
	}
	require.Len(t, held, 3, "ldap, postgres and scim")

	// After the hire: each account and entitlement, held and why.
	holdings, err := lg.Holdings(ctx, employee)
	require.NoError(t, err)
	onbRun := runID(ctx, t, c, onbID)
	for app, ents := range held {
		acct := holding(t, holdings, app, "")
		assert.Equal(t, ledger.StateEnabled, acct.State, app)
		assert.Equal(t, username, acct.Account, app)
		for _, ent := range ents {
			h := holding(t, holdings, app, ent)
			assert.Equal(t, ledger.StateGranted, h.State, "%s/%s", app, ent)
			assert.Equal(t, ledger.EventJoiner, h.Event)
			assert.NotEmpty(t, h.Rules, "%s/%s: the rules behind the grant", app, ent)
			assert.Equal(t, hired.PolicyVersion, h.PolicyVersion)
			assert.Equal(t, onbID, h.WorkflowID)
			assert.Equal(t, onbRun, h.RunID)
		}
	}
	holders, err := lg.Holders(ctx, "ldap", held["ldap"][0])
	require.NoError(t, err)
	assert.True(t, slices.ContainsFunc(holders, func(h ledger.Holding) bool { return h.EmployeeID == employee }),
		"the new hire is among the holders of ldap/%s", held["ldap"][0])

	out, err = runCLI(t, bin, cfg, "terminate", employee, "--reason", "e2e ledger", "--wait")
	require.NoError(t, err, out)
	offRun := runID(ctx, t, c, offID)

	trail, err := lg.Trail(ctx, employee, time.Time{})
	require.NoError(t, err)
	type key struct {
		app, ent string
		action   ledger.Action
	}
	seen := map[key]int{}
	for i, e := range trail {
		k := key{e.Application, e.Entitlement, e.Action}
		seen[k]++
		assert.Equal(t, 1, seen[k], "%v written once", k)
		assert.Equal(t, employee, e.EmployeeID)
		assert.Equal(t, username, e.Account)
		assert.NotEmpty(t, e.ActivityID)
		if i > 0 {
			assert.Less(t, trail[i-1].Seq, e.Seq, "oldest first")
		}
		switch e.Action {
		case ledger.ActionCreated, ledger.ActionGranted:
			assert.Equal(t, ledger.EventJoiner, e.Event, "%v", k)
			assert.Equal(t, onbID, e.WorkflowID, "%v", k)
			assert.Equal(t, onbRun, e.RunID, "%v", k)
			assert.Equal(t, hired.PolicyVersion, e.PolicyVersion, "%v", k)
			assert.NotEmpty(t, e.Rules, "%v", k)
		case ledger.ActionDisabled, ledger.ActionRevoked:
			assert.Equal(t, ledger.EventLeaver, e.Event, "%v", k)
			assert.Equal(t, "e2e ledger", e.Note, "%v: HR's reason", k)
			assert.Equal(t, offID, e.WorkflowID, "%v", k)
			assert.Equal(t, offRun, e.RunID, "%v", k)
		default:
			t.Errorf("unexpected entry %+v", e)
		}
	}
	want := map[key]int{}
	for app, ents := range held {
		want[key{app, "", ledger.ActionCreated}] = 1
		want[key{app, "", ledger.ActionDisabled}] = 1
		for _, ent := range ents {
			want[key{app, ent, ledger.ActionGranted}] = 1
			want[key{app, ent, ledger.ActionRevoked}] = 1
		}
	}
	assert.Equal(t, want, seen, "exactly the changes made, each once")
	// In order: an application's account before its grants, every joiner
	// change before the leaver's, every disable before any revoke.
	pos := map[key]int{}
	for i, e := range trail {
		pos[key{e.Application, e.Entitlement, e.Action}] = i
	}
	for app, ents := range held {
		for _, ent := range ents {
			assert.Less(t, pos[key{app, "", ledger.ActionCreated}], pos[key{app, ent, ledger.ActionGranted}])
			for other := range held {
				assert.Less(t, pos[key{other, "", ledger.ActionDisabled}], pos[key{app, ent, ledger.ActionRevoked}],
					"the kill switch disables %s before it revokes %s/%s", other, app, ent)
			}
		}
	}

	// After the leaver: disabled accounts, no entitlement.
	holdings, err = lg.Holdings(ctx, employee)
	require.NoError(t, err)
	require.Len(t, holdings, len(held))
	for _, h := range holdings {
		assert.Empty(t, h.Entitlement, "no entitlement is held: %+v", h)
		assert.Equal(t, ledger.StateDisabled, h.State, h.Application)
		assert.Equal(t, ledger.EventLeaver, h.Event, h.Application)
	}
	holders, err = lg.Holders(ctx, "ldap", held["ldap"][0])
	require.NoError(t, err)
	assert.False(t, slices.ContainsFunc(holders, func(h ledger.Holding) bool { return h.EmployeeID == employee }),
		"the leaver no longer holds ldap/%s", held["ldap"][0])

	// The database refuses to rewrite the trail.
	_, err = pool.Exec(ctx, `UPDATE access_ledger SET note = 'rewritten' WHERE employee_id = $1`, employee)
	assert.ErrorContains(t, err, "append-only")
	_, err = pool.Exec(ctx, `DELETE FROM access_ledger WHERE employee_id = $1`, employee)
	assert.ErrorContains(t, err, "append-only")
}

// holding finds the holding of app (the account when ent is empty).
func holding(t *testing.T, hs []ledger.Holding, app, ent string) ledger.Holding {
	t.Helper()
	i := slices.IndexFunc(hs, func(h ledger.Holding) bool { return h.Application == app && h.Entitlement == ent })
	require.GreaterOrEqual(t, i, 0, "%s/%s is not held: %+v", app, ent, hs)
	return hs[i]
}

// runID is the ID of the latest run of a workflow.
func runID(ctx context.Context, t *testing.T, c client.Client, workflowID string) string {
	t.Helper()
	d, err := c.DescribeWorkflow(ctx, workflowID, "")
	require.NoError(t, err)
	return d.WorkflowExecution.RunID
}
