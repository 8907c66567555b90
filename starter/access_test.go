package main

import (
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"

	"github.com/provisio-dev/provisio/workflows"
)

// TestAccessCommandsRefuseBadInputBeforeDialing covers extend-access and
// revoke-access; request-access is in TestTriggersRefuseInvalidInput.
func TestAccessCommandsRefuseBadInputBeforeDialing(t *testing.T) {
	cases := []struct {
		name string
		cmd  func(*rootOptions) *cobra.Command
		args []string
		want string
	}{
		{"extend without duration", newExtendAccessCmd, []string{"E100002", "postgres/prod_admin"}, "--duration is required"},
		{"extend negative", newExtendAccessCmd, []string{"E100002", "postgres/prod_admin", "--duration", "-1h"}, `--duration: "-1h": must be positive`},
		{"extend bad duration", newExtendAccessCmd, []string{"E100002", "postgres/prod_admin", "--duration", "ten days"}, "use e.g. 30d"},
		{"extend bad requester", newExtendAccessCmd, []string{"E100002", "postgres/prod_admin", "--duration", "1h", "--as", "bob"}, "--as: must be an employee ID"},
		{"revoke bad employee", newRevokeAccessCmd, []string{"X1", "postgres/prod_admin"}, "EMPLOYEE_ID: must be an employee ID"},
		{"revoke bad ref", newRevokeAccessCmd, []string{"E100002", "postgres/"}, "APPLICATION/ENTITLEMENT: want APPLICATION/ENTITLEMENT"},
		{"revoke bad characters", newRevokeAccessCmd, []string{"E100002", "postgres/prod admin"}, "letters, digits"},
		{"missing args", newRevokeAccessCmd, []string{"E100002"}, "accepts 2 arg(s)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runWithClient(t, nil, tc.cmd, tc.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseAccessDurationReadsDays(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "30d": 30 * 24 * time.Hour, "8h": 8 * time.Hour, "1d12h": 36 * time.Hour} {
		got, err := parseAccessDuration(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
}

func TestRequestAccessStartsOneWorkflowPerGrant(t *testing.T) {
	c := &mocks.Client{}
	run := &mocks.WorkflowRun{}
	run.On("GetRunID").Return("run-1")
	var opts client.StartWorkflowOptions
	var in workflows.TemporaryAccessInput
	c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		opts = a.Get(1).(client.StartWorkflowOptions)
		in = a.Get(3).(workflows.TemporaryAccessInput)
	}).Return(run, nil)
	c.On("Close").Return()
	out, _, err := runWithClient(t, c, func(o *rootOptions) *cobra.Command { return requestAccessCmd(o, knownPeople) },
		"E100002", "postgres/prod_admin", "--duration", "1d", "--justification", "incident 42")
	require.NoError(t, err)
	assert.Equal(t, "access-E100002-postgres-prod_admin", opts.ID)
	assert.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, opts.WorkflowIDReusePolicy)
	assert.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, opts.WorkflowIDConflictPolicy)
	assert.Equal(t, 24*time.Hour, in.Duration)
	assert.Equal(t, "incident 42", in.Justification)
	assert.Contains(t, out, "access-E100002-postgres-prod_admin")
	assert.Contains(t, out, "access-E100002-postgres-prod_admin/postgres/prod_admin")
}

func TestRequestAccessFromAFile(t *testing.T) {
	c := &mocks.Client{}
	run := &mocks.WorkflowRun{}
	run.On("GetRunID").Return("run-1")
	var in workflows.TemporaryAccessInput
	c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		in = a.Get(3).(workflows.TemporaryAccessInput)
	}).Return(run, nil)
	c.On("Close").Return()
	file := writeFile(t, `{"type":"request-access","employee_id":"E100002","entitlement":"ldap/vpn","duration":"8h",
		"justification":"on call","requested_by":"E100008"}`)
	out, _, err := runWithClient(t, c, func(o *rootOptions) *cobra.Command { return requestAccessCmd(o, knownPeople) }, "-f", file)
	require.NoError(t, err)
	assert.Equal(t, workflows.TemporaryAccessInput{EmployeeID: "E100002", Application: "ldap", Entitlement: "vpn",
		Duration: 8 * time.Hour, RequestedBy: "E100008", Justification: "on call"}, in)
	assert.Contains(t, out, "Requested ldap/vpn for E100002\n  workflow: access-E100002-ldap-vpn\n")
	assert.Contains(t, out, "request ID access-E100002-ldap-vpn/ldap/vpn")
}
