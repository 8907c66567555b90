package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/workflows"
)

// compensationPolicy grants one entitlement in each application; the SCIM
// group is declared in policy but exists nowhere, so its grant fails for good
// after the LDAP and PostgreSQL steps may already have succeeded.
const compensationPolicy = `schema: 1
fallback_approver: E100015
applications:
  - name: ldap
    connector: ldap
    owner: E100012
    entitlements: [{name: all-staff, risk: low}]
  - name: postgres
    connector: postgres
    owner: E100016
    entitlements: [{name: analytics_read, risk: medium}]
  - name: scim
    connector: scim
    owner: E100088
    entitlements: [{name: %s, risk: low}]
rules:
  - name: everyone
    when: "true"
    entitlements: [ldap/all-staff, postgres/analytics_read, scim/%s]
`

// TestOnboardingFailureLeavesNothingBehind provisions into LDAP, PostgreSQL
// and SCIM with a plan whose SCIM grant can never succeed, then lists every
// application page by page and proves the run removed all it had created.
func TestOnboardingFailureLeavesNothingBehind(t *testing.T) {
	cfg := testConfig(t)
	ghost := "ghost-" + strings.ToLower(newEmployeeID(t))
	cfg.PolicyFile = filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(cfg.PolicyFile, fmt.Appendf(nil, compensationPolicy, ghost, ghost), 0o600))
	c, deps := startWorker(t, cfg)

	employee := newEmployeeID(t)
	person := newTestPerson(employee, "Comp", "Ensation")
	person.Title = "Engineer"
	person.StartDate = hr.Date{Time: time.Now().UTC().Truncate(24 * time.Hour)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.OnboardingID(employee), TaskQueue: cfg.TaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.AttrEmployeeID.ValueSet(employee)),
	}, workflows.Onboarding, workflows.OnboardingInput{Person: person})
	require.NoError(t, err)
	err = run.Get(ctx, nil)
	require.Error(t, err, "a grant that can never succeed fails the onboarding")
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae), "%v", err)
	assert.Equal(t, "OnboardingFailed", ae.Type())
	assert.Contains(t, ae.Error(), "scim", "the failure names the application")
	assert.Contains(t, ae.Error(), "removed", "and says what was undone")

	desc, err := c.DescribeWorkflow(ctx, run.GetID(), run.GetRunID())
	require.NoError(t, err)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, desc.Status)

	// The run really created accounts before it failed, and undid them.
	scheduled := map[string]int{}
	it := c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[a.GetActivityType().GetName()]++
		}
	}
	assert.Equal(t, 3, scheduled["EnsureAccount"], "one account per application was created")
	assert.Equal(t, 3, scheduled["DeleteAccount"], "and each was deleted by compensation")
	assert.GreaterOrEqual(t, scheduled["RevokeEntitlement"], 2, "granted entitlements were revoked first")

	// Every application, listed in full: no account of this person remains.
	for name, conn := range deps.Activities.Connectors {
		for _, acct := range listAll(t, ctx, conn) {
			assert.NotEqual(t, employee, acct.EmployeeID, "%s still holds account %q of the failed hire", name, acct.Username)
		}
	}
}

// listAll pages through every account of an application.
func listAll(t *testing.T, ctx context.Context, c connectors.Connector) []connectors.Account {
	t.Helper()
	var all []connectors.Account
	token := ""
	for {
		page, err := c.ListAccounts(ctx, connectors.ListAccountsRequest{PageToken: token})
		require.NoError(t, err, c.Name())
		all = append(all, page.Accounts...)
		if page.NextPageToken == "" {
			return all
		}
		token = page.NextPageToken
	}
}
