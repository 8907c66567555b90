package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/policy"
)

const (
	demoPolicyFile = "../deployments/demo/policy.yaml"
	demoRosterFile = "../deployments/demo/roster.csv"
)

// runPolicyCmd runs one command built by newCmd with the demo files as the
// configured defaults, and returns stdout, stderr and the error.
func runPolicyCmd(t *testing.T, newCmd func(*rootOptions) *cobra.Command, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	opts := &rootOptions{out: &out, errOut: &errOut, cfg: config.Config{PolicyFile: demoPolicyFile, RosterFile: demoRosterFile}}
	cmd := newCmd(opts)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestPolicyCheck(t *testing.T) {
	t.Run("the demo policy is valid", func(t *testing.T) {
		out, _, err := runPolicyCmd(t, newPolicyCmd, "check", demoPolicyFile)
		require.NoError(t, err)
		assert.Contains(t, out, demoPolicyFile+": OK (version ")
		assert.Contains(t, out, "3 applications")
	})
	t.Run("defaults to the configured file", func(t *testing.T) {
		out, _, err := runPolicyCmd(t, newPolicyCmd, "check")
		require.NoError(t, err)
		assert.Contains(t, out, demoPolicyFile+": OK")
	})
	t.Run("every problem with its line", func(t *testing.T) {
		bad := "../policy/testdata/bad/fields.yaml"
		_, errOut, err := runPolicyCmd(t, newPolicyCmd, "check", bad)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "problem(s)")
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		assert.Greater(t, len(lines), 5)
		for _, l := range lines {
			assert.Regexp(t, `^`+bad+`:\d+: .+; .+`, l)
		}
		assert.Contains(t, errOut, bad+`:5: applications[0]: unknown field "conector"; did you mean "connector"?`)
	})
	t.Run("json", func(t *testing.T) {
		out, _, err := runPolicyCmd(t, newPolicyCmd, "check", "-o", "json", "../policy/testdata/bad/role-cycles.yaml")
		require.Error(t, err)
		var rep policyCheckReport
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		assert.False(t, rep.Valid)
		require.NotEmpty(t, rep.Problems)
		assert.Equal(t, 13, rep.Problems[0].Line)

		out, _, err = runPolicyCmd(t, newPolicyCmd, "check", "-o", "json", demoPolicyFile)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		assert.True(t, rep.Valid)
		assert.Len(t, rep.Version, 64)
	})
	t.Run("unreadable file", func(t *testing.T) {
		_, _, err := runPolicyCmd(t, newPolicyCmd, "check", filepath.Join(t.TempDir(), "none.yaml"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "no such file")
	})
	t.Run("bad output format", func(t *testing.T) {
		_, _, err := runPolicyCmd(t, newPolicyCmd, "check", "-o", "yaml")
		assert.ErrorContains(t, err, "--output")
	})
}

func TestPlanCmd(t *testing.T) {
	t.Run("from the roster, as a table", func(t *testing.T) {
		out, _, err := runPolicyCmd(t, newPlanCmd, "E100088")
		require.NoError(t, err)
		for _, want := range []string{
			"Plan for E100088 (Finance, Controller, Remote, employee)",
			"APPLICATION", "WHY", "APPROVALS",
			"rule finance-controllers -> role payments-controller",
			"manager E100029 (escalate 3d, expire 7d)",
			"then owner E100015",
			// E100088 owns the scim application: never their own approver.
			"scim/finance-admins: owner step: the approver would be the person themselves",
		} {
			assert.Contains(t, out, want)
		}
	})
	t.Run("json", func(t *testing.T) {
		out, _, err := runPolicyCmd(t, newPlanCmd, "--output", "json", "E100002")
		require.NoError(t, err)
		var pl policy.Plan
		require.NoError(t, json.Unmarshal([]byte(out), &pl))
		assert.Equal(t, "E100002", pl.EmployeeID)
		assert.Len(t, pl.PolicyVersion, 64)
		require.NotEmpty(t, pl.Items)
		assert.Contains(t, out, `"policyVersion"`)
	})
	t.Run("from a file, with a temporary-only entitlement", func(t *testing.T) {
		dir := t.TempDir()
		pol, err := os.ReadFile(demoPolicyFile)
		require.NoError(t, err)
		extra := "\n  - {name: sre-breakglass, when: 'person.title == \"SRE\"', entitlements: [postgres/prod_admin]}\n"
		src := strings.Replace(string(pol), "\nseparation_of_duties:", extra+"\nseparation_of_duties:", 1)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(src), 0o600))
		person := `{"employee_id":"E200001","given_name":"Ada","family_name":"Lovelace","email":"ada@example.com",
			"department":"Engineering","title":"SRE","location":"Remote","employment_type":"contractor",
			"start_date":"2026-01-01","end_date":"2026-12-31","attributes":{"cost_center":"analytics"}}`
		require.NoError(t, os.WriteFile(filepath.Join(dir, "person.json"), []byte(person), 0o600))

		out, _, err := runPolicyCmd(t, newPlanCmd, "-f", filepath.Join(dir, "person.json"), "--policy", filepath.Join(dir, "policy.yaml"))
		require.NoError(t, err)
		for _, want := range []string{
			"prod_admin (temporary)",
			"postgres/prod_admin: temporary, at most 8h, reminder 1h before the end, extension needs approval again",
			// No manager in the record: the owner approves instead, once.
			"postgres/prod_admin: manager step: no manager in the HR record: the application owner approves instead",
			"rule cost-center-analytics",
			"Leaver:\n  2026-12-31: contractor end date",
		} {
			assert.Contains(t, out, want)
		}
	})
	t.Run("errors", func(t *testing.T) {
		_, _, err := runPolicyCmd(t, newPlanCmd)
		assert.ErrorContains(t, err, "EMPLOYEE_ID")
		_, _, err = runPolicyCmd(t, newPlanCmd, "E100001", "-f", "x.json")
		assert.ErrorContains(t, err, "not both")
		_, _, err = runPolicyCmd(t, newPlanCmd, "E999999")
		assert.ErrorContains(t, err, "not in the roster")
		_, _, err = runPolicyCmd(t, newPlanCmd, "E100001", "--policy", "../policy/testdata/bad/secrets.yaml")
		assert.ErrorContains(t, err, "looks like a secret")
		assert.NotContains(t, err.Error(), "hunter2", "a refused secret is never echoed")
	})
}
