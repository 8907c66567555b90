package activities

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/policy"
)

func demoPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Load("../deployments/demo/policy.yaml")
	require.NoError(t, err)
	return p
}

func salesPerson() hr.Person {
	return hr.Person{
		EmployeeID: "E100001", GivenName: "José", FamilyName: "Muñoz", Email: "jose.munoz@example.com",
		Department: "Sales", Title: "Account Executive", Location: "Berlin", EmploymentType: hr.TypeEmployee,
		StartDate: hr.Date{Time: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)}, Status: hr.StatusActive,
	}
}

// engineerAccounts is what an engineer holds, with a VPN grant that came
// from a temporary-access request, a temporary-only production role and a
// group granted by hand.
func engineerAccounts() []FoundAccount {
	return []FoundAccount{
		{Application: "ldap", Exists: true, Entitlements: []string{"all-staff", "employees", "engineering", "legacy-wiki", "vpn"}},
		{Application: "postgres", Exists: true, Entitlements: []string{"analytics_read", "prod_admin"}},
		{Application: "scim", Exists: true, Entitlements: []string{"all-staff", "engineering"}},
	}
}

func TestDiffAccessForAnEngineerMovingToSales(t *testing.T) {
	tests := []struct {
		name      string
		temporary []GrantRef
		revoke    []AppAccess
		expiring  []GrantRef
	}{
		{
			name:      "temporary grants are kept until they expire",
			temporary: []GrantRef{{"ldap", "vpn"}},
			revoke: []AppAccess{
				{Application: "ldap", Entitlements: []string{"engineering"}},
				{Application: "postgres", Entitlements: []string{"analytics_read"}},
				{Application: "scim", Entitlements: []string{"engineering"}},
			},
			expiring: []GrantRef{{"ldap", "vpn"}, {"postgres", "prod_admin"}},
		},
		{
			name: "a permanent grant the new role does not justify goes",
			revoke: []AppAccess{
				{Application: "ldap", Entitlements: []string{"engineering", "vpn"}},
				{Application: "postgres", Entitlements: []string{"analytics_read"}},
				{Application: "scim", Entitlements: []string{"engineering"}},
			},
			// Temporary-only access is never held permanently, whether or
			// not its temporary-access run was found.
			expiring: []GrantRef{{"postgres", "prod_admin"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := diffAccess(demoPolicy(t), DiffAccessInput{Person: salesPerson(), Accounts: engineerAccounts(), Temporary: tc.temporary})
			require.NoError(t, err)
			assert.NotEmpty(t, res.PolicyVersion)
			assert.Equal(t, []AppAccess{
				{Application: "ldap", Entitlements: []string{"sales"}},
				{Application: "scim", Entitlements: []string{"sales"}},
			}, res.Grant)
			assert.Equal(t, tc.revoke, res.Revoke)
			assert.Equal(t, tc.expiring, res.Expiring)
			assert.Equal(t, []GrantRef{{"ldap", "legacy-wiki"}}, res.Unmanaged, "what the policy does not declare is never touched")
			assert.Equal(t, []GrantRef{{"ldap", "all-staff"}, {"ldap", "employees"}, {"scim", "all-staff"}}, res.Keep)
			assert.Empty(t, res.Approvals)
			assert.Empty(t, res.Blocked)
			assert.NotEmpty(t, res.Reasons["ldap/sales"], "every new grant says why")
		})
	}
}

func TestDiffAccessCarriesApprovalsAndCreatesNothingForForeignAccounts(t *testing.T) {
	p := salesPerson()
	p.Department, p.Title, p.ManagerID = "Finance", "Controller", "E100008"
	accounts := []FoundAccount{
		{Application: "ldap", Exists: true, Entitlements: []string{"all-staff", "employees", "sales"}},
		// Somebody else's account with the username counts as nothing held.
		{Application: "scim", Exists: true, Foreign: true, Entitlements: []string{"finance-admins"}},
	}
	res, err := diffAccess(demoPolicy(t), DiffAccessInput{Person: p, Accounts: accounts})
	require.NoError(t, err)
	require.Len(t, res.Approvals, 1)
	assert.Equal(t, "scim", res.Approvals[0].Application)
	assert.Equal(t, "finance-admins", res.Approvals[0].Entitlement)
	assert.NotEmpty(t, res.Approvals[0].Steps)
	assert.Equal(t, []AppAccess{{Application: "ldap", Entitlements: []string{"sales"}}}, res.Revoke)
	assert.Contains(t, res.Grant, AppAccess{Application: "scim", Entitlements: []string{"all-staff"}})
}

func TestDiffAccessBlocksASeparationOfDutiesConflictWithWhatStays(t *testing.T) {
	// A contract controller books invoices (postgres/billing_write) ...
	p := salesPerson()
	p.Department, p.Title, p.EmploymentType = "Finance", "Controller", hr.TypeEmployee
	// ... and still holds it by hand-granted temporary access while the
	// new role asks for payment approval (scim/finance-admins).
	accounts := []FoundAccount{{Application: "postgres", Exists: true, Entitlements: []string{"billing_write"}}}
	res, err := diffAccess(demoPolicy(t), DiffAccessInput{Person: p, Accounts: accounts, Temporary: []GrantRef{{"postgres", "billing_write"}}})
	require.NoError(t, err)
	require.Len(t, res.Blocked, 1)
	assert.Contains(t, res.Blocked[0], "book-and-approve-payments")
}

func TestGrantOfReadsTheTemporaryAccessState(t *testing.T) {
	g, err := grantOf(json.RawMessage(`{"state":"active","application":"ldap","entitlement":"vpn","expiresAt":"2027-01-01T00:00:00Z"}`))
	require.NoError(t, err)
	assert.Equal(t, GrantRef{"ldap", "vpn"}, g)
	for _, bad := range []string{`[]`, `{"state":"active"}`, `"x"`} {
		_, err := grantOf(json.RawMessage(bad))
		assert.Error(t, err, bad)
	}
}
