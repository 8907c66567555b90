package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/workflows"
)

// TestMoverEndToEnd hires an engineer through the CLI, moves them to
// Sales, and checks in LDAP, PostgreSQL and SCIM that the engineering
// access is gone and the sales access is there. Sending the same move
// again starts nothing.
func TestMoverEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	c, deps := startWorker(t, cfg)
	bin := buildStarter(t)
	employee := newEmployeeID(t)

	person := newTestPerson(employee, "Mo", "Ver")
	person.StartDate = hr.Date{Time: time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -30)}
	out, err := runCLI(t, bin, cfg, "hire", "-f", writePerson(t, person), "--wait")
	require.NoError(t, err, out)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var hired workflows.OnboardingResult
	require.NoError(t, c.GetWorkflow(ctx, workflows.OnboardingID(employee), "").Get(ctx, &hired))
	username := hired.Username
	require.NotEmpty(t, username)
	t.Cleanup(func() {
		for _, conn := range deps.Activities.Connectors {
			_, _ = conn.DeleteAccount(context.Background(), connectors.AccountRequest{Username: username})
		}
	})
	held := func(app string) []string {
		t.Helper()
		acct, err := deps.Activities.Connectors[app].GetAccount(ctx, connectors.AccountRequest{Username: username})
		require.NoError(t, err, app)
		return acct.Entitlements
	}
	require.Contains(t, held("ldap"), "engineering")
	require.Contains(t, held("scim"), "engineering")
	require.Contains(t, held("postgres"), "analytics_read")

	moved := person
	moved.Department, moved.Title = "Sales", "Account Executive"
	file := writePerson(t, moved)
	out, err = runCLI(t, bin, cfg, "move", "-f", file, "--wait")
	require.NoError(t, err, out)
	wfID := workflows.MoverID(employee, workflows.MoverChangeKey(moved))
	assert.Contains(t, out, "workflow: "+wfID)
	assert.Contains(t, out, cfg.UIURL+"/namespaces/default/workflows/"+wfID, "the CLI prints the UI link")

	var res workflows.MoverResult
	require.NoError(t, c.GetWorkflow(ctx, wfID, "").Get(ctx, &res))
	recordHistory(t, c, wfID, "", "mover-v1")
	assert.Equal(t, username, res.Username)

	ldapHeld, scimHeld, pgHeld := held("ldap"), held("scim"), held("postgres")
	assert.Contains(t, ldapHeld, "sales")
	assert.Contains(t, ldapHeld, "all-staff")
	assert.NotContains(t, ldapHeld, "engineering")
	assert.Contains(t, scimHeld, "sales")
	assert.NotContains(t, scimHeld, "engineering")
	assert.NotContains(t, pgHeld, "analytics_read")

	// The directory itself agrees: the person is in the sales group only.
	ldapOut := run(t, "ldapsearch", "-x", "-LLL", "-H", cfg.LDAP.URL, "-D", cfg.LDAP.BindDN, "-w", cfg.LDAP.Password,
		"-b", cfg.LDAP.GroupsDN, "(|(member=uid="+username+","+cfg.LDAP.PeopleDN+")(memberUid="+username+"))", "cn")
	assert.Contains(t, ldapOut, "cn: sales")
	assert.NotContains(t, ldapOut, "cn: engineering")
	// PostgreSQL: the role is no longer a member of analytics_read.
	pgOut := run(t, "psql", cfg.Postgres.URL, "-Atc",
		"SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid "+
			"WHERE r.rolname = '"+username+"' AND g.rolname = 'analytics_read'")
	assert.Equal(t, "0", strings.TrimSpace(pgOut))

	// The same HR change again starts nothing.
	out, err = runCLI(t, bin, cfg, "move", "-f", file)
	require.NoError(t, err, out)
	assert.Contains(t, out, "already applied")
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: "EmployeeId = '" + employee + "' AND LifecycleEvent = 'mover'",
	})
	require.NoError(t, err)
	assert.Len(t, resp.GetExecutions(), 1, "one run per change, however often HR sends it")
}

// TestMoveRefusesAnUnknownEmployeeAndStartsNothing checks the CLI's checks
// before anything starts.
func TestMoveRefusesAnUnknownEmployeeAndStartsNothing(t *testing.T) {
	cfg := testConfig(t)
	bin := buildStarter(t)
	employee := newEmployeeID(t)
	out, err := runCLI(t, bin, cfg, "move", "--employee-id", employee, "--given-name", "A", "--family-name", "B",
		"--email", "a@example.com", "--department", "Sales", "--title", "Rep", "--location", "Berlin")
	require.Error(t, err, "exit code must be non-zero: %s", out)
	assert.Contains(t, out, "employee_id")
	assert.Contains(t, out, "unknown employee")
	assert.NotContains(t, out, "Started role change")

	out, err = runCLI(t, bin, cfg, "move", "--employee-id", employee, "--given-name", "A", "--family-name", "B",
		"--department", "Sales", "--title", "Rep", "--location", "Berlin")
	require.Error(t, err, out)
	assert.Contains(t, out, "email")
}
