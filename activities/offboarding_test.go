package activities_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/policy"
)

// lookup is a username store with reservations and lookups.
type lookup struct {
	names map[string]string
	err   error
	calls atomic.Int32
}

func (l *lookup) Reserve(context.Context, string, string, string) (string, error) {
	return "", errors.New("a leaver must never reserve")
}

func (l *lookup) Lookup(_ context.Context, employeeID string) (string, bool, error) {
	l.calls.Add(1)
	if l.err != nil {
		return "", false, l.err
	}
	name, ok := l.names[employeeID]
	return name, ok, nil
}

// reserveOnly is a username store that cannot look up.
type reserveOnly struct{}

func (reserveOnly) Reserve(context.Context, string, string, string) (string, error) { return "", nil }

// stubConnector answers GetAccount from a fixed account or error; any
// other call panics, because FindAccounts must change nothing.
type stubConnector struct {
	connectors.Connector
	name  string
	acct  connectors.Account
	err   error
	block bool
	asked atomic.Int32
}

func (s *stubConnector) Name() string { return s.name }

func (s *stubConnector) GetAccount(ctx context.Context, req connectors.AccountRequest) (connectors.Account, error) {
	s.asked.Add(1)
	if s.block {
		<-ctx.Done()
		return connectors.Account{}, connectors.Errorf(connectors.KindTimeout, s.name, "GetAccount", ctx.Err(), "no answer")
	}
	if s.err != nil {
		return connectors.Account{}, s.err
	}
	a := s.acct
	a.Username = req.Username
	return a, nil
}

type fixedPolicy struct{ p *policy.Policy }

func (f fixedPolicy) Current() *policy.Policy { return f.p }

func demoPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Load("../deployments/demo/policy.yaml")
	require.NoError(t, err)
	return p
}

func findAccounts(t *testing.T, a *activities.Activities, in activities.FindAccountsInput) (activities.FindAccountsResult, error) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(a.FindAccounts, in)
	if err != nil {
		return activities.FindAccountsResult{}, err
	}
	var res activities.FindAccountsResult
	require.NoError(t, val.Get(&res))
	return res, nil
}

func TestFindAccountsReadsEveryApplication(t *testing.T) {
	mine := connectors.Account{EmployeeID: "E100001", Entitlements: []string{"all-staff", "vpn"}}
	conns := map[string]*stubConnector{
		"ldap":     {name: "ldap", acct: mine},
		"postgres": {name: "postgres", acct: connectors.Account{EmployeeID: "E100001", Disabled: true}},
		"scim":     {name: "scim", err: connectors.Errorf(connectors.KindNotFound, "scim", "GetAccount", nil, "no such user")},
		"crm":      {name: "crm", err: connectors.Errorf(connectors.KindUnavailable, "crm", "GetAccount", nil, "connection refused")},
		"wiki":     {name: "wiki", acct: connectors.Account{EmployeeID: "E200002"}},
		"files":    {name: "files", acct: connectors.Account{}},
	}
	a := &activities.Activities{
		Connectors: map[string]connectors.Connector{},
		Usernames:  &lookup{names: map[string]string{"E100001": "ada.lovelace"}},
		Policy:     fixedPolicy{demoPolicy(t)},
	}
	for name, c := range conns {
		a.Connectors[name] = c
	}
	res, err := findAccounts(t, a, activities.FindAccountsInput{EmployeeID: "E100001"})
	require.NoError(t, err)
	require.Equal(t, "ada.lovelace", res.Username)
	month := 30 * policy.Day
	assert.Equal(t, []activities.FoundAccount{
		{Application: "crm", Retention: month, DisableFallback: activities.FallbackFlag, ErrorKind: "Unavailable", Error: "crm GetAccount: Unavailable: connection refused"},
		{Application: "files", Retention: month, DisableFallback: activities.FallbackFlag, Foreign: true},
		{Application: "ldap", Retention: 90 * policy.Day, DisableFallback: activities.FallbackFlag, Exists: true, Entitlements: []string{"all-staff", "vpn"}},
		{Application: "postgres", Retention: month, DisableFallback: activities.FallbackFlag, Exists: true, Disabled: true},
		{Application: "scim", Retention: month, DisableFallback: activities.FallbackFlag},
		{Application: "wiki", Retention: month, DisableFallback: activities.FallbackFlag, Foreign: true},
	}, res.Applications, "sorted; unreachable and foreign accounts are reported, not failed")

	t.Run("only the named applications", func(t *testing.T) {
		for _, c := range conns {
			c.asked.Store(0)
		}
		res, err := findAccounts(t, a, activities.FindAccountsInput{EmployeeID: "E100001", Applications: []string{"scim", "ldap", "ldap"}})
		require.NoError(t, err)
		require.Len(t, res.Applications, 2)
		assert.Equal(t, "ldap", res.Applications[0].Application)
		assert.Equal(t, "scim", res.Applications[1].Application)
		assert.Zero(t, conns["postgres"].asked.Load())
	})
}

func TestFindAccountsWithoutPolicyUsesTheDefaultRetention(t *testing.T) {
	a := &activities.Activities{
		Connectors: map[string]connectors.Connector{"ldap": &stubConnector{name: "ldap", acct: connectors.Account{EmployeeID: "E100001"}}},
		Usernames:  &lookup{names: map[string]string{"E100001": "ada"}},
	}
	res, err := findAccounts(t, a, activities.FindAccountsInput{EmployeeID: "E100001"})
	require.NoError(t, err)
	assert.Equal(t, policy.DefaultRetention, res.Applications[0].Retention)
}

func TestFindAccountsRefusals(t *testing.T) {
	ldap := &stubConnector{name: "ldap"}
	tests := []struct {
		name     string
		acts     *activities.Activities
		in       activities.FindAccountsInput
		wantKind connectors.ErrorKind
		wantMsg  string
	}{
		{"invalid employee ID", &activities.Activities{Usernames: &lookup{}},
			activities.FindAccountsInput{EmployeeID: "x)(uid=*"}, connectors.KindInvalid, "E + 6 digits"},
		{"unknown application", &activities.Activities{Usernames: &lookup{}, Connectors: map[string]connectors.Connector{"ldap": ldap}},
			activities.FindAccountsInput{EmployeeID: "E100001", Applications: []string{"nope"}}, connectors.KindInvalid, "no connector for application"},
		{"store cannot look up", &activities.Activities{Usernames: reserveOnly{}},
			activities.FindAccountsInput{EmployeeID: "E100001"}, connectors.KindInvalid, "cannot look usernames up"},
		{"store outage is retryable", &activities.Activities{Usernames: &lookup{err: errors.New("connection reset")}},
			activities.FindAccountsInput{EmployeeID: "E100001"}, connectors.KindUnavailable, "connection reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := findAccounts(t, tt.acts, tt.in)
			assert.Equal(t, string(tt.wantKind), errType(t, err))
			assert.Contains(t, err.Error(), tt.wantMsg)
		})
	}
	assert.Zero(t, ldap.asked.Load(), "nothing is read after a refusal")
}

func TestFindAccountsWithoutReservationReadsNothing(t *testing.T) {
	ldap := &stubConnector{name: "ldap"}
	a := &activities.Activities{Connectors: map[string]connectors.Connector{"ldap": ldap}, Usernames: &lookup{}}
	res, err := findAccounts(t, a, activities.FindAccountsInput{EmployeeID: "E100001"})
	require.NoError(t, err)
	assert.Equal(t, activities.FindAccountsResult{}, res)
	assert.Zero(t, ldap.asked.Load())
}

// TestFindAccountsAHangingApplicationDoesNotHideTheOthers calls the method
// directly, with a short deadline standing in for the activity's
// StartToCloseTimeout.
func TestFindAccountsAHangingApplicationDoesNotHideTheOthers(t *testing.T) {
	a := &activities.Activities{
		Connectors: map[string]connectors.Connector{
			"ldap": &stubConnector{name: "ldap", acct: connectors.Account{EmployeeID: "E100001"}},
			"slow": &stubConnector{name: "slow", block: true},
		},
		Usernames: &lookup{names: map[string]string{"E100001": "ada"}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res, err := a.FindAccounts(ctx, activities.FindAccountsInput{EmployeeID: "E100001"})
	require.NoError(t, err, "the activity answers before its own deadline")
	require.Len(t, res.Applications, 2)
	assert.True(t, res.Applications[0].Exists)
	assert.Equal(t, string(connectors.KindTimeout), res.Applications[1].ErrorKind)
	assert.Contains(t, res.Applications[1].Error, "slow GetAccount")
}

// TestFindAccountsOnPostgres reads a real role: what a leaver finds is what
// the connector provisioned, and another application's role is not it.
func TestFindAccountsOnPostgres(t *testing.T) {
	f := newFixture(t)
	f.acts.Usernames = &lookup{names: map[string]string{"E100001": "ada"}}
	_, err := run[connectors.EnsureAccountResponse](f, f.acts.EnsureAccount, activities.EnsureAccountInput{App: "pg-b", Account: account("ada"), Audit: joiner})
	require.NoError(t, err)
	_, err = run[connectors.EntitlementResponse](f, f.acts.GrantEntitlement, activities.EntitlementInput{App: "pg-b", Username: "ada", Entitlement: f.group, Audit: joiner})
	require.NoError(t, err)

	res, err := run[activities.FindAccountsResult](f, f.acts.FindAccounts, activities.FindAccountsInput{EmployeeID: "E100001"})
	require.NoError(t, err)
	require.Equal(t, "ada", res.Username)
	assert.Equal(t, []activities.FoundAccount{
		{Application: "pg-a", Retention: policy.DefaultRetention, DisableFallback: activities.FallbackFlag},
		{Application: "pg-b", Retention: policy.DefaultRetention, DisableFallback: activities.FallbackFlag, Exists: true, Entitlements: []string{f.group}},
	}, res.Applications)
}

func TestAwaitWorkflowClosedNeedsAWorker(t *testing.T) {
	a := &activities.Activities{}
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	_, err := env.ExecuteActivity(a.AwaitWorkflowClosed, activities.AwaitWorkflowClosedInput{})
	assert.Equal(t, string(connectors.KindInvalid), errType(t, err))
	assert.Contains(t, err.Error(), "workflow ID is empty")
}

// TestFindAccountsRetryUnreadable: a caller that cannot act on half the
// applications (the mover) gets a retryable failure while one is down, so
// the activity's retries wait the outage out; an error no retry cures is
// still reported in the result.
func TestFindAccountsRetryUnreadable(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		retry   bool
		wantErr string
	}{
		{"down, retried", connectors.Errorf(connectors.KindUnavailable, "ldap", "GetAccount", nil, "connection refused"), true, "cannot read the account in ldap (retrying)"},
		{"timing out, retried", connectors.Errorf(connectors.KindTimeout, "ldap", "GetAccount", nil, "no answer"), true, "cannot read the account in ldap (retrying)"},
		{"down, reported when not asked to retry", connectors.Errorf(connectors.KindUnavailable, "ldap", "GetAccount", nil, "connection refused"), false, ""},
		{"refused for good, reported", connectors.Errorf(connectors.KindPermission, "ldap", "GetAccount", nil, "insufficient access"), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &activities.Activities{
				Connectors: map[string]connectors.Connector{
					"ldap": &stubConnector{name: "ldap", err: tt.err},
					"scim": &stubConnector{name: "scim", acct: connectors.Account{EmployeeID: "E100001"}},
				},
				Usernames: &lookup{names: map[string]string{"E100001": "ada.lovelace"}},
			}
			res, err := findAccounts(t, a, activities.FindAccountsInput{EmployeeID: "E100001", RetryUnreadable: tt.retry})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				var ae *temporal.ApplicationError
				require.ErrorAs(t, err, &ae)
				assert.False(t, ae.NonRetryable(), "the activity's retry policy retries it")
				return
			}
			require.NoError(t, err)
			require.Len(t, res.Applications, 2)
			assert.NotEmpty(t, res.Applications[0].Error, "ldap's error is in the result")
			assert.True(t, res.Applications[1].Exists)
		})
	}
}
