package verify

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/policy"
)

func acct(user, eid string, disabled bool, ents ...string) connectors.Account {
	return connectors.Account{Username: user, EmployeeID: eid, Disabled: disabled, Entitlements: ents}
}

func TestCompare(t *testing.T) {
	alice := Person{EmployeeID: "E100001", Username: "alice", Accounts: map[string]Account{
		"ldap": {Entitlements: []string{"all-staff", "vpn"}},
		"scim": {Entitlements: []string{"all-staff"}},
	}}
	leaver := Person{EmployeeID: "E100002", Username: "bob", Accounts: map[string]Account{"ldap": {Disabled: true}}}
	nothing := Person{EmployeeID: "E100003", Username: "carol"}
	tests := []struct {
		name   string
		want   []Person
		got    Snapshot
		strict bool
		diffs  []Difference
	}{
		{
			name: "all as expected",
			want: []Person{alice, leaver, nothing},
			got: Snapshot{
				"ldap": {acct("alice", "E100001", false, "vpn", "all-staff"), acct("bob", "E100002", true)},
				"scim": {acct("alice", "E100001", false, "all-staff")},
			},
			strict: true,
		},
		{
			name: "missing account and entitlement, extra entitlement",
			want: []Person{alice},
			got:  Snapshot{"ldap": {acct("alice", "E100001", false, "all-staff", "finance")}},
			diffs: []Difference{
				{Kind: KindExtraEntitlement, Application: "ldap", EmployeeID: "E100001", Username: "alice", Entitlement: "finance"},
				{Kind: KindMissingEntitlement, Application: "ldap", EmployeeID: "E100001", Username: "alice", Entitlement: "vpn"},
				{Kind: KindMissing, Application: "scim", EmployeeID: "E100001", Username: "alice", Detail: "want enabled with all-staff"},
			},
		},
		{
			name: "a leaver still enabled, with an entitlement",
			want: []Person{leaver},
			got:  Snapshot{"ldap": {acct("bob", "E100002", false, "vpn")}},
			diffs: []Difference{
				{Kind: KindExtraEntitlement, Application: "ldap", EmployeeID: "E100002", Username: "bob", Entitlement: "vpn"},
				{Kind: KindState, Application: "ldap", EmployeeID: "E100002", Username: "bob", Detail: "want disabled, got enabled"},
			},
		},
		{
			name: "an account where none should be",
			want: []Person{nothing},
			got:  Snapshot{"scim": {acct("carol", "E100003", false)}},
			diffs: []Difference{
				{Kind: KindExtra, Application: "scim", EmployeeID: "E100003", Username: "carol", Detail: "the person should hold no account here"},
			},
		},
		{
			name: "duplicate accounts, the right one compared",
			want: []Person{leaver},
			got:  Snapshot{"ldap": {acct("bob2", "E100002", false), acct("bob", "E100002", true)}},
			diffs: []Difference{
				{Kind: KindDuplicate, Application: "ldap", EmployeeID: "E100002", Username: "bob", Detail: "2 accounts: bob, bob2"},
			},
		},
		{
			name: "wrong username",
			want: []Person{leaver},
			got:  Snapshot{"ldap": {acct("robert", "E100002", true)}},
			diffs: []Difference{
				{Kind: KindUsername, Application: "ldap", EmployeeID: "E100002", Username: "robert", Detail: "want bob"},
			},
		},
		{
			name:   "strict: strangers and unmanaged accounts are extra",
			want:   []Person{nothing},
			got:    Snapshot{"postgres": {acct("svc", "", false), acct("dave", "E100009", false)}},
			strict: true,
			diffs: []Difference{
				{Kind: KindExtra, Application: "postgres", Username: "svc", Detail: "an account with no employee ID in an application that should hold only the people checked"},
				{Kind: KindExtra, Application: "postgres", EmployeeID: "E100009", Username: "dave", Detail: "belongs to nobody checked"},
			},
		},
		{
			name: "not strict: strangers are ignored unless they carry a checked username",
			want: []Person{nothing},
			got:  Snapshot{"postgres": {acct("svc", "", false), acct("carol", "E100009", false)}},
			diffs: []Difference{
				{Kind: KindExtra, Application: "postgres", EmployeeID: "E100009", Username: "carol", Detail: "carries the username of E100003"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.diffs, Compare(tt.want, tt.got, Options{Strict: tt.strict}))
		})
	}
}

func TestLedger(t *testing.T) {
	const eid = "E100001"
	account := func(app, user, state string) ledger.Holding {
		return ledger.Holding{EmployeeID: eid, Application: app, Account: user, State: state}
	}
	grant := func(app, user, ent string) ledger.Holding {
		return ledger.Holding{EmployeeID: eid, Application: app, Account: user, Entitlement: ent, State: ledger.StateGranted}
	}
	tests := []struct {
		name     string
		holdings []ledger.Holding
		accounts map[string][]connectors.Account
		diffs    []Difference
	}{
		{
			name:     "agree",
			holdings: []ledger.Holding{account("ldap", "alice", ledger.StateEnabled), grant("ldap", "alice", "vpn")},
			accounts: map[string][]connectors.Account{"ldap": {acct("alice", eid, false, "vpn")}},
		},
		{
			name: "both empty (a compensated hire)",
		},
		{
			name:     "the ledger lost a revocation and a disable",
			holdings: []ledger.Holding{account("ldap", "alice", ledger.StateEnabled), grant("ldap", "alice", "vpn")},
			accounts: map[string][]connectors.Account{"ldap": {acct("alice", eid, true)}},
			diffs: []Difference{
				{Kind: KindLedger, Application: "ldap", EmployeeID: eid, Username: "alice", Detail: "the ledger says enabled, the application disabled"},
				{Kind: KindLedger, Application: "ldap", EmployeeID: eid, Username: "alice", Entitlement: "vpn", Detail: "granted in the ledger, not held in the application"},
			},
		},
		{
			name:     "an account the ledger never recorded",
			accounts: map[string][]connectors.Account{"scim": {acct("alice", eid, false, "all-staff")}},
			diffs: []Difference{
				{Kind: KindLedger, Application: "scim", EmployeeID: eid, Username: "alice", Detail: "the application holds the account (enabled with all-staff) the ledger does not show"},
			},
		},
		{
			name:     "a deletion the ledger missed",
			holdings: []ledger.Holding{account("postgres", "alice", ledger.StateDisabled)},
			diffs: []Difference{
				{Kind: KindLedger, Application: "postgres", EmployeeID: eid, Username: "alice", Detail: "the ledger shows the account disabled; the application has none"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.diffs, Ledger(eid, tt.holdings, tt.accounts))
		})
	}
}

func TestBirthright(t *testing.T) {
	plan := policy.Plan{Items: []policy.Item{
		{Application: "ldap", Entitlement: "vpn"},
		{Application: "ldap", Entitlement: "all-staff"},
		{Application: "postgres", Entitlement: "billing_write", Approvals: []policy.ApprovalStep{{}}},
		{Application: "postgres", Entitlement: "prod_admin", Temporary: true},
		{Application: "scim", Entitlement: "all-staff"},
	}}
	accounts, gated := Birthright(plan)
	assert.Equal(t, map[string]Account{
		"ldap": {Entitlements: []string{"all-staff", "vpn"}},
		"scim": {Entitlements: []string{"all-staff"}},
	}, accounts, "gated items give no account by themselves")
	require.Len(t, gated, 2)
	assert.Equal(t, "billing_write", gated[0].Entitlement)
	assert.Equal(t, "prod_admin", gated[1].Entitlement)
}

func TestSummarize(t *testing.T) {
	want := []Person{{EmployeeID: "E1", Accounts: map[string]Account{"ldap": {}, "scim": {}}}}
	got := Snapshot{"ldap": {acct("a", "E1", false)}, "postgres": {}}
	diffs := Compare(want, got, Options{Strict: true})
	assert.Equal(t, []Summary{
		{Application: "ldap", Expected: 1, Held: 1, ByKind: map[Kind]int{}},
		{Application: "postgres", Held: 0, ByKind: map[Kind]int{}},
		{Application: "scim", Expected: 1, ByKind: map[Kind]int{KindMissing: 1}},
	}, Summarize(want, got, diffs))
}

// pager is a connector that lists in pages of two, or fails.
type pager struct {
	connectors.Connector
	accounts []connectors.Account
	err      error
}

func (p pager) ListAccounts(_ context.Context, req connectors.ListAccountsRequest) (connectors.ListAccountsResponse, error) {
	if p.err != nil {
		return connectors.ListAccountsResponse{}, p.err
	}
	start := 0
	if req.PageToken != "" {
		start = int(req.PageToken[0] - '0')
	}
	end := min(start+2, len(p.accounts))
	resp := connectors.ListAccountsResponse{Accounts: p.accounts[start:end]}
	if end < len(p.accounts) {
		resp.NextPageToken = string(rune('0' + end))
	}
	return resp, nil
}

func TestCollect(t *testing.T) {
	five := []connectors.Account{{Username: "a"}, {Username: "b"}, {Username: "c"}, {Username: "d"}, {Username: "e"}}
	s, err := Collect(context.Background(), map[string]connectors.Connector{"ldap": pager{accounts: five}, "scim": pager{}})
	require.NoError(t, err)
	assert.Equal(t, Snapshot{"ldap": five, "scim": {}}, s, "every page is read")

	_, err = Collect(context.Background(), map[string]connectors.Connector{"ldap": pager{err: errors.New("down")}})
	require.ErrorContains(t, err, "list the accounts of ldap: down")
}
