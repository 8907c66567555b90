package app

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/policy"
)

func demoPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Load("../../deployments/demo/policy.yaml")
	require.NoError(t, err)
	return p
}

func controller(employmentType string) hr.Person {
	return hr.Person{
		EmployeeID: "E900001", GivenName: "Ada", FamilyName: "Byron", Email: "ada.byron@example.com",
		Department: "Finance", Title: "Controller", ManagerID: "E100008", Location: "Berlin",
		EmploymentType: employmentType, StartDate: hr.Date{Time: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		Status: hr.StatusActive,
	}
}

func TestFromPlanCarriesApprovalStepsInsteadOfDeferring(t *testing.T) {
	const day = 24 * time.Hour
	cases := []struct {
		name      string
		person    hr.Person
		wantApps  []activities.AppAccess
		wantAppro []activities.ApprovalItem
	}{
		{
			name:   "controller: owner approval of the entitlement plus the role's manager approval",
			person: controller(hr.TypeEmployee),
			wantApps: []activities.AppAccess{
				{Application: "ldap", Entitlements: []string{"all-staff", "employees", "finance", "managers"}},
				{Application: "postgres", Entitlements: []string{"analytics_read", "billing_read"}},
				{Application: "scim", Entitlements: []string{"all-staff"}},
			},
			wantAppro: []activities.ApprovalItem{{Application: "scim", Entitlement: "finance-admins", Steps: []activities.ApprovalStep{
				{Kind: "manager", ApproverID: "E100008", EscalateAfter: 3 * day, ExpireAfter: 7 * day},
				{Kind: "owner", ApproverID: "E100088", EscalateAfter: 3 * day, ExpireAfter: 7 * day},
			}}},
		},
		{
			name:   "contract controller: manager approval for billing_write",
			person: controller(hr.TypeContractor),
			wantApps: []activities.AppAccess{
				{Application: "ldap", Entitlements: []string{"all-staff", "contractors", "finance", "managers"}},
				{Application: "postgres", Entitlements: []string{"analytics_read", "billing_read"}},
				{Application: "scim", Entitlements: []string{"all-staff"}},
			},
			wantAppro: []activities.ApprovalItem{{Application: "postgres", Entitlement: "billing_write", Steps: []activities.ApprovalStep{
				{Kind: "manager", ApproverID: "E100008", EscalateAfter: 3 * day, ExpireAfter: 7 * day},
			}}},
		},
	}
	p := demoPolicy(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := p.Plan(tc.person)
			require.NoError(t, err)
			res := FromPlan(plan)
			assert.Equal(t, tc.wantApps, res.Applications)
			assert.Equal(t, tc.wantAppro, res.Approvals)
			assert.Empty(t, res.Deferred, "nothing planned at hire is left out")
			for _, a := range tc.wantAppro {
				assert.NotEmpty(t, res.Reasons[a.Application+"/"+a.Entitlement], "the why of an approval item is kept too")
			}
		})
	}
}

func TestFromPlanDefersTemporaryAccessEvenWithApproval(t *testing.T) {
	plan := policy.Plan{PolicyVersion: "v", Items: []policy.Item{{
		Application: "postgres", Entitlement: "prod_admin", Temporary: true,
		Approvals: []policy.ApprovalStep{{Kind: policy.ApproverManager, ApproverID: "E100008", EscalateAfter: time.Hour, ExpireAfter: 2 * time.Hour}},
	}}}
	res := FromPlan(plan)
	assert.Empty(t, res.Approvals)
	assert.Empty(t, res.Applications)
	assert.Equal(t, []activities.DeferredAccess{{Application: "postgres", Entitlement: "prod_admin", Reason: "temporary access only: request it"}}, res.Deferred)
}

func TestFromPlanCarriesTheLeaverAContractImplies(t *testing.T) {
	end := hr.Date{Time: time.Date(2027, 5, 31, 0, 0, 0, 0, time.UTC)}
	cases := []struct {
		name     string
		typ      string
		end      hr.Date
		wantDate hr.Date
	}{
		{"contractor with an end date", hr.TypeContractor, end, end},
		{"contractor without an end date", hr.TypeContractor, hr.Date{}, hr.Date{}},
		{"employee with an end date", hr.TypeEmployee, end, hr.Date{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := controller(tc.typ)
			p.EndDate = tc.end
			plan, err := demoPolicy(t).Plan(p)
			require.NoError(t, err)
			res := FromPlan(plan)
			assert.Equal(t, tc.wantDate, res.LeaverDate)
			if !tc.wantDate.IsZero() {
				assert.NotEmpty(t, res.LeaverReason)
			}
		})
	}
}
