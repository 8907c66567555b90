package activities

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/policy"
)

// heldConnector answers GetAccount from a map of username to account; the
// other methods are not used by PlanRequest.
type heldConnector struct {
	connectors.Connector
	name     string
	accounts map[string]connectors.Account
}

func (c *heldConnector) Name() string { return c.name }

func (c *heldConnector) GetAccount(_ context.Context, req connectors.AccountRequest) (connectors.Account, error) {
	if a, ok := c.accounts[req.Username]; ok {
		return a, nil
	}
	return connectors.Account{}, &connectors.Error{Kind: connectors.KindNotFound, Op: "GetAccount"}
}

type staticPolicy struct{ p *policy.Policy }

func (s staticPolicy) Current() *policy.Policy { return s.p }

type people map[string]hr.Person

func (p people) ManagerOf(context.Context, string) (string, bool, error) { return "", false, nil }
func (p people) Person(_ context.Context, id string) (hr.Person, bool, error) {
	x, ok := p[id]
	return x, ok, nil
}

type usernames map[string]string

func (u usernames) Reserve(context.Context, string, string, string) (string, error) { return "", nil }
func (u usernames) Lookup(_ context.Context, id string) (string, bool, error) {
	n, ok := u[id]
	return n, ok, nil
}

func requester() hr.Person {
	return hr.Person{
		EmployeeID: "E900001", GivenName: "Ada", FamilyName: "Byron", Email: "ada@example.com", Department: "Engineering",
		Title: "Engineer", ManagerID: "E100012", Location: "Berlin", EmploymentType: hr.TypeEmployee, Status: hr.StatusActive,
		StartDate: hr.Date{Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
}

// planFixture is the demo policy, a person holding billing_write in
// postgres, and no account in scim.
func planFixture(t *testing.T, holds ...string) *Activities {
	t.Helper()
	p, err := policy.Load("../deployments/demo/policy.yaml")
	require.NoError(t, err)
	acct := connectors.Account{Username: "ada.byron", EmployeeID: "E900001", Entitlements: holds}
	return &Activities{
		Policy:    staticPolicy{p},
		Directory: people{"E900001": requester()},
		Usernames: usernames{"E900001": "ada.byron"},
		Connectors: map[string]connectors.Connector{
			"postgres": &heldConnector{name: "postgres", accounts: map[string]connectors.Account{"ada.byron": acct}},
			"scim":     &heldConnector{name: "scim", accounts: map[string]connectors.Account{}},
		},
	}
}

func TestPlanRequest(t *testing.T) {
	cases := []struct {
		name  string
		holds []string
		in    PlanRequestInput
		check func(t *testing.T, r PlanRequestResult)
		err   string
	}{
		{
			name: "capped to the entitlement's max and routed to manager then owner",
			in:   PlanRequestInput{EmployeeID: "E900001", Application: "postgres", Entitlement: "prod_admin", Duration: 24 * time.Hour},
			check: func(t *testing.T, r PlanRequestResult) {
				assert.Equal(t, 8*time.Hour, r.Duration)
				assert.True(t, r.Capped)
				assert.Equal(t, time.Hour, r.RemindBefore)
				assert.True(t, r.ExtensionNeedsApproval)
				assert.True(t, r.AccountExists)
				assert.Equal(t, "ada.byron", r.Username)
				require.Len(t, r.Steps, 2)
				assert.Equal(t, "E100012", r.Steps[0].ApproverID)
				assert.Equal(t, "E100016", r.Steps[1].ApproverID)
			},
		},
		{
			name: "default 90 days, account to create",
			in:   PlanRequestInput{EmployeeID: "E900001", Application: "scim", Entitlement: "engineering"},
			check: func(t *testing.T, r PlanRequestResult) {
				assert.Equal(t, 90*policy.Day, r.Duration)
				assert.False(t, r.Capped)
				assert.False(t, r.AccountExists)
				assert.Equal(t, "E900001", r.Account.EmployeeID)
				assert.Empty(t, r.Steps)
			},
		},
		{
			name:  "separation of duties adds its approver",
			holds: []string{"billing_write"},
			in:    PlanRequestInput{EmployeeID: "E900001", Application: "postgres", Entitlement: "prod_admin", Duration: time.Hour},
			check: func(t *testing.T, r PlanRequestResult) {
				require.Len(t, r.Steps, 3)
				assert.Equal(t, "E100088", r.Steps[2].ApproverID)
				assert.Equal(t, []string{"production-and-billing"}, r.Conflicts)
			},
		},
		{name: "unknown entitlement", in: PlanRequestInput{EmployeeID: "E900001", Application: "postgres", Entitlement: "root"}, err: "no entitlement postgres/root"},
		{name: "unknown person", in: PlanRequestInput{EmployeeID: "E900002", Application: "postgres", Entitlement: "prod_read"}, err: "not in the HR directory"},
		{name: "bad ID", in: PlanRequestInput{EmployeeID: "x", Application: "postgres", Entitlement: "prod_read"}, err: "not E + 6 digits"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := planFixture(t, tc.holds...)
			r, err := a.PlanRequest(context.Background(), tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			tc.check(t, r)
		})
	}
}

func TestPlanRequestNeedsAUsername(t *testing.T) {
	a := planFixture(t)
	a.Usernames = usernames{}
	_, err := a.PlanRequest(context.Background(), PlanRequestInput{EmployeeID: "E900001", Application: "postgres", Entitlement: "prod_read"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "only a person onboarded by provisio")
}

type fakeLister struct {
	query     string
	cancelled []string
}

func (f *fakeLister) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.query = req.GetQuery()
	return &workflowservice.ListWorkflowExecutionsResponse{Executions: []*workflow.WorkflowExecutionInfo{
		{Execution: &common.WorkflowExecution{WorkflowId: "access-E900001-postgres-prod_admin"}},
	}}, nil
}

func (f *fakeLister) CancelWorkflow(_ context.Context, id, _ string) error {
	f.cancelled = append(f.cancelled, id)
	return nil
}

func TestCancelRunsCancelsWhatTheQueryFinds(t *testing.T) {
	cases := []struct {
		name, query, want string
	}{
		{"temporary access", TemporaryAccessQuery("E900001"),
			"EmployeeId = 'E900001' AND LifecycleEvent = 'temporary-access' AND ExecutionStatus = 'Running'"},
		{"role changes", RoleChangesQuery("E900001"),
			"EmployeeId = 'E900001' AND LifecycleEvent = 'mover' AND ExecutionStatus = 'Running'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeLister{}
			ids, err := cancelRuns(context.Background(), f, "test", tc.query)
			require.NoError(t, err)
			assert.Equal(t, tc.want, f.query)
			assert.Equal(t, []string{"access-E900001-postgres-prod_admin"}, f.cancelled)
			assert.Equal(t, f.cancelled, ids)
		})
	}
}
