package activities_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/connectors/scim"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/scimapp/scimapptest"
)

// leaver is the audit of a leaver's revocation, first asked for at a fixed
// time.
var leaver = activities.Audit{
	EmployeeID:    "E100001",
	Justification: ledger.Justification{Event: ledger.EventLeaver, Note: "resigned"},
	RequestedAt:   time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC),
}

// ignoringApp is the real demo SCIM app made to accept a deactivation and
// not apply it, with a connector named "saas" in front of it, and the
// activities over it.
type ignoringApp struct {
	srv    *scimapptest.Server
	conn   *scim.Client
	ledger *fakeLedger
	env    *testsuite.TestActivityEnvironment
	acts   *activities.Activities
}

func newIgnoringApp(t *testing.T) *ignoringApp {
	t.Helper()
	srv := scimapptest.Start(t, scimapptest.Options{IgnoreDeactivate: true})
	conn, err := scim.New(scim.Config{Name: "saas", BaseURL: srv.URL, Token: srv.Token, HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	a := &ignoringApp{srv: srv, conn: conn, ledger: &fakeLedger{}}
	a.acts = &activities.Activities{Connectors: map[string]connectors.Connector{"saas": conn}, Ledger: a.ledger}
	var suite testsuite.WorkflowTestSuite
	a.env = suite.NewTestActivityEnvironment()
	a.env.RegisterActivity(a.acts)
	_, err = conn.EnsureAccount(context.Background(), connectors.EnsureAccountRequest{Account: account("ada")})
	require.NoError(t, err)
	return a
}

// TestDisableIgnoredByTheApplicationIsNotVerified: the application
// answers the disable with success and keeps the user active. The activity
// must fail retryably as NotVerified, record nothing, and leave the
// deletion fallback to record a verified fallback-delete.
func TestDisableIgnoredByTheApplicationIsNotVerified(t *testing.T) {
	a := newIgnoringApp(t)
	in := activities.AccountInput{App: "saas", Username: "ada", Audit: leaver}

	_, err := a.env.ExecuteActivity(a.acts.DisableAccount, in)
	assert.Equal(t, string(connectors.KindNotVerified), errType(t, err))
	assert.Contains(t, err.Error(), "not verified")
	assert.True(t, connectors.KindNotVerified.Retryable(), "the workflow retries an unverified disable")
	assert.Empty(t, a.ledger.all(), "an ignored disable is not access removed")
	ok, err := a.srv.Store.CanLogin(context.Background(), "ada")
	require.NoError(t, err)
	assert.True(t, ok, "the application really ignored it: the user can still log in")

	fallback := in
	fallback.Audit.Fallback = true
	res, err := run[connectors.DeleteResponse](&fixture{t: t, env: a.env}, a.acts.DeleteAccount, fallback)
	require.NoError(t, err)
	assert.True(t, res.Deleted)
	_, err = a.conn.GetAccount(context.Background(), connectors.AccountRequest{Username: "ada"})
	assert.True(t, connectors.IsNotFound(err), "gone: %v", err)
	entries := a.ledger.all()
	require.Len(t, entries, 1)
	e := entries[0]
	assert.Equal(t, ledger.ActionDeleted, e.Action)
	assert.Equal(t, ledger.VerifiedFallbackDelete, e.VerifiedBy)
	assert.Equal(t, leaver.RequestedAt, e.RequestedAt, "requested when the workflow first asked for the disable")
	assert.True(t, e.VerifiedAt.After(e.RequestedAt))

	// Tried again by the workflow's loop (a new activity: the first may
	// have deleted and then failed to record), the fallback finds the
	// account gone and still records that it is.
	fallback.Audit.Retry = true
	res, err = run[connectors.DeleteResponse](&fixture{t: t, env: a.env}, a.acts.DeleteAccount, fallback)
	require.NoError(t, err)
	assert.False(t, res.Deleted)
	entries = a.ledger.all()
	require.Len(t, entries, 2)
	assert.Equal(t, ledger.VerifiedFallbackDelete, entries[1].VerifiedBy)
}

// ignoresRevoke is a real connector whose RevokeEntitlement answers
// "changed" and does nothing: an application that drops the removal.
type ignoresRevoke struct{ connectors.Connector }

func (ignoresRevoke) RevokeEntitlement(context.Context, connectors.EntitlementRequest) (connectors.EntitlementResponse, error) {
	return connectors.EntitlementResponse{Changed: true}, nil
}

// TestRevokeIsVerified: a revoke the application does not apply fails as
// NotVerified; one it applies is recorded with when it was requested and
// verified.
func TestRevokeIsVerified(t *testing.T) {
	f := newFixture(t)
	ent := activities.EntitlementInput{App: "pg-b", Username: "ada", Entitlement: f.group, Audit: leaver}
	_, err := run[connectors.EnsureAccountResponse](f, f.acts.EnsureAccount, activities.EnsureAccountInput{App: "pg-b", Account: account("ada"), Audit: joiner})
	require.NoError(t, err)
	grant := ent
	grant.Audit = joiner
	_, err = run[connectors.EntitlementResponse](f, f.acts.GrantEntitlement, grant)
	require.NoError(t, err)
	before := len(f.ledger.all())

	real := f.acts.Connectors["pg-b"]
	f.acts.Connectors["pg-b"] = ignoresRevoke{real}
	_, err = f.env.ExecuteActivity(f.acts.RevokeEntitlement, ent)
	assert.Equal(t, string(connectors.KindNotVerified), errType(t, err))
	assert.Contains(t, err.Error(), f.group)
	assert.Len(t, f.ledger.all(), before, "nothing recorded")
	assert.True(t, f.member(f.prefix("pg-b")+"ada", f.group), "still held: the read-back was right")

	f.acts.Connectors["pg-b"] = real
	_, err = run[connectors.EntitlementResponse](f, f.acts.RevokeEntitlement, ent)
	require.NoError(t, err)
	entries := f.ledger.all()
	require.Len(t, entries, before+1)
	e := entries[before]
	assert.Equal(t, ledger.ActionRevoked, e.Action)
	assert.Equal(t, ledger.VerifiedReadBack, e.VerifiedBy)
	assert.Equal(t, leaver.RequestedAt, e.RequestedAt)
	assert.False(t, e.VerifiedAt.IsZero())
}

// TestFallbackOnlyDeletes: the fallback mark belongs to the deletion that
// stands for an ignored disable; on any other step it is refused before
// anything changes.
func TestFallbackOnlyDeletes(t *testing.T) {
	f := newFixture(t)
	_, err := run[connectors.EnsureAccountResponse](f, f.acts.EnsureAccount, activities.EnsureAccountInput{App: "pg-b", Account: account("ada"), Audit: joiner})
	require.NoError(t, err)
	au := leaver
	au.Fallback = true
	_, err = f.env.ExecuteActivity(f.acts.DisableAccount, activities.AccountInput{App: "pg-b", Username: "ada", Audit: au})
	assert.Equal(t, string(connectors.KindInvalid), errType(t, err))
	_, err = f.env.ExecuteActivity(f.acts.RevokeEntitlement, activities.EntitlementInput{App: "pg-b", Username: "ada", Entitlement: f.group, Audit: au})
	assert.Equal(t, string(connectors.KindInvalid), errType(t, err))
	_, login := f.role(f.prefix("pg-b") + "ada")
	assert.True(t, login, "nothing was disabled")
}

// deletesOnDisable is a real connector whose application removes an
// account when asked to disable it (a deactivation that is a soft delete).
type deletesOnDisable struct{ connectors.Connector }

func (d deletesOnDisable) DisableAccount(ctx context.Context, req connectors.AccountRequest) (connectors.DisableResponse, error) {
	_, err := d.DeleteAccount(ctx, req)
	return connectors.DisableResponse{Changed: true}, err
}

// TestDisableOfAGoneAccount: an account gone before the disable, or
// removed by it, has no access left. Once read back it is recorded as
// deleted and reported NotFound, which the leaver counts as deleted.
func TestDisableOfAGoneAccount(t *testing.T) {
	for _, tc := range []struct {
		name string
		gone func(f *fixture)
	}{
		{"gone before the disable", func(f *fixture) {
			f.exec("DROP ROLE " + qi(f.prefix("pg-b")+"ada"))
		}},
		{"removed by the disable", func(f *fixture) {
			f.acts.Connectors["pg-b"] = deletesOnDisable{f.acts.Connectors["pg-b"]}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			_, err := run[connectors.EnsureAccountResponse](f, f.acts.EnsureAccount, activities.EnsureAccountInput{App: "pg-b", Account: account("ada"), Audit: joiner})
			require.NoError(t, err)
			before := len(f.ledger.all())
			tc.gone(f)

			_, err = f.env.ExecuteActivity(f.acts.DisableAccount, activities.AccountInput{App: "pg-b", Username: "ada", Audit: leaver})
			assert.Equal(t, string(connectors.KindNotFound), errType(t, err))
			exists, _ := f.role(f.prefix("pg-b") + "ada")
			require.False(t, exists)
			entries := f.ledger.all()
			require.Len(t, entries, before+1)
			e := entries[before]
			assert.Equal(t, ledger.ActionDeleted, e.Action)
			assert.Equal(t, ledger.VerifiedReadBack, e.VerifiedBy)
			assert.Equal(t, leaver.RequestedAt, e.RequestedAt)
			assert.Equal(t, "resigned; found gone when disabling", e.Note)
		})
	}
}
