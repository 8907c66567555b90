package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/workflows"
)

// TestHireEndToEnd is the thinnest real slice: the CLI starts an onboarding,
// the worker provisions LDAP, PostgreSQL and SCIM, and the accounts are then
// checked with the applications' own tools, not through our connectors.
func TestHireEndToEnd(t *testing.T) {
	cfg := testConfig(t)
	c, deps := startWorker(t, cfg)
	bin := buildStarter(t)
	employee := newEmployeeID(t)

	person := newTestPerson(employee, "José", "Tëst")
	file := writePerson(t, person)

	out, err := runCLI(t, bin, cfg, "hire", "-f", file, "--wait")
	require.NoError(t, err, out)
	wfID := workflows.OnboardingID(employee)
	assert.Contains(t, out, "workflow: "+wfID)
	assert.Contains(t, out, cfg.UIURL+"/namespaces/default/workflows/"+wfID, "the CLI prints the UI link")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var res workflows.OnboardingResult
	require.NoError(t, c.GetWorkflow(ctx, wfID, "").Get(ctx, &res))
	recordHistory(t, c, wfID, "", "onboarding-v1")
	username := res.Username
	require.NotEmpty(t, username)
	assert.True(t, strings.HasPrefix(username, "jose.test"), "username derived from the name: %s", username)
	t.Cleanup(func() {
		for _, conn := range deps.Activities.Connectors {
			_, _ = conn.DeleteAccount(context.Background(), connectors.AccountRequest{Username: username})
		}
	})

	// The LDAP entry, seen by ldapsearch.
	ldapOut := run(t, "ldapsearch", "-x", "-LLL", "-H", cfg.LDAP.URL, "-D", cfg.LDAP.BindDN, "-w", cfg.LDAP.Password,
		"-b", cfg.LDAP.PeopleDN, "(employeeNumber="+employee+")", "uid", "objectClass", "mail")
	assert.Contains(t, ldapOut, "uid: "+username)
	assert.Contains(t, ldapOut, "objectClass: inetOrgPerson")
	assert.Contains(t, ldapOut, "mail: "+person.Email)

	// The PostgreSQL role, seen by psql.
	pgOut := run(t, "psql", cfg.Postgres.URL, "-Atc",
		"SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = '"+username+"'")
	assert.Equal(t, username+"|t", strings.TrimSpace(pgOut), "a LOGIN role exists")

	// Every planned entitlement is really held, in every application.
	require.NotEmpty(t, res.Accounts)
	for _, acct := range res.Accounts {
		got, err := deps.Activities.Connectors[acct.Application].GetAccount(ctx, connectors.AccountRequest{Username: username})
		require.NoError(t, err, acct.Application)
		assert.False(t, got.Disabled, acct.Application)
		assert.ElementsMatch(t, acct.Entitlements, got.Entitlements, acct.Application)
		assert.Equal(t, employee, got.EmployeeID, acct.Application)
	}

	// Hiring the same person again starts nothing and says so.
	out, err = runCLI(t, bin, cfg, "hire", "-f", file)
	require.NoError(t, err, out)
	assert.Contains(t, out, "already done")
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: "EmployeeId = '" + employee + "'",
	})
	require.NoError(t, err)
	assert.Len(t, resp.GetExecutions(), 1, "one run per hire, however often HR sends it")

	// status shows the finished run and the accounts.
	out, err = runCLI(t, bin, cfg, "status", employee)
	require.NoError(t, err, out)
	assert.Contains(t, out, wfID)
	assert.Contains(t, out, "completed")
	assert.Contains(t, out, username)
}

// TestHireRefusesBadInputAndStartsNothing checks that a malformed record is
// refused by the CLI with the field named, and no workflow appears.
func TestHireRefusesBadInputAndStartsNothing(t *testing.T) {
	cfg := testConfig(t)
	bin := buildStarter(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"bad employee id", []string{"--employee-id", "x)(uid=*", "--given-name", "A", "--family-name", "B",
			"--email", "a@example.com", "--department", "Sales", "--title", "Rep", "--location", "Berlin"}, "employee_id"},
		{"missing email", []string{"--employee-id", "E999998", "--given-name", "A", "--family-name", "B",
			"--department", "Sales", "--title", "Rep", "--location", "Berlin"}, "email"},
		{"end before start", []string{"--employee-id", "E999998", "--given-name", "A", "--family-name", "B",
			"--email", "a@example.com", "--department", "Sales", "--title", "Rep", "--location", "Berlin",
			"--start-date", "2026-12-01", "--end-date", "2026-11-01"}, "end_date"},
		{"unknown roster person", []string{"--roster", cfg.RosterFile, "--employee-id", "E999997"}, "not in the roster"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(t, bin, cfg, append([]string{"hire"}, tc.args...)...)
			require.Error(t, err, "exit code must be non-zero: %s", out)
			assert.Contains(t, out, tc.want)
			assert.NotContains(t, out, "Started onboarding")
		})
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	require.NoError(t, err, "%s: %s", name, out)
	return string(out)
}
