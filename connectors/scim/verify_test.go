package scim

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/scimapp/scimapptest"
)

// refuseMemberFilter plays a server that does not support filtering
// Groups by member: 400 invalidFilter, as RFC 7644 §3.4.2.2 prescribes.
func refuseMemberFilter() *fault {
	return &fault{
		Status: http.StatusBadRequest,
		Detail: func(*http.Request) string { return "invalidFilter: members filter is not supported" },
		Match: func(r *http.Request) bool {
			return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/Groups") &&
				strings.HasPrefix(r.URL.Query().Get("filter"), "members")
		},
	}
}

// verifyOnly runs Verify and checks that it only read: every request it
// sent is a GET. It returns the verification and those requests.
func verifyOnly(t *testing.T, c *Client, rec *recorder, req connectors.VerifyRequest) (connectors.Verification, []recorded) {
	t.Helper()
	n := rec.count()
	v, err := c.Verify(testCtx(t), req)
	require.NoError(t, err, "%+v", req)
	reqs := rec.since(n)
	for _, r := range reqs {
		assert.Equal(t, http.MethodGet, r.Method, "Verify changes nothing: %s %s", r.Method, r.Path)
	}
	assert.NotEmpty(t, v.Detail, "a verification says what it read")
	return v, reqs
}

// TestVerifyAcrossDialects walks a user through grant, disable, revoke and
// delete on servers that expose memberships three ways, and checks that
// Verify reads each revocation from the cheapest source the server offers,
// downloading the group's member list only when the server leaves no other
// way, and that every request the connector sends stays standard.
func TestVerifyAcrossDialects(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(http.Handler) http.Handler
		// from is where the membership must be read.
		from string
	}{
		{name: "groups attribute", from: fromUserGroups},
		{name: "dialect: no groups attribute, string booleans, no totalResults", wrap: dialect, from: fromMemberFilter},
		{name: "dialect and no members filter", wrap: func(h http.Handler) http.Handler {
			return dialect(refuseMemberFilter().wrap(h))
		}, from: fromMemberList},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			srv := startServer(t, func(h http.Handler) http.Handler {
				if tc.wrap != nil {
					h = tc.wrap(h)
				}
				return rec.wrap(h)
			})
			c := newClient(t, srv, nil)
			ctx := testCtx(t)
			const u, ent = "walker", "engineering"
			disabled := connectors.VerifyRequest{Username: u, Check: connectors.CheckDisabled}
			revoked := connectors.VerifyRequest{Username: u, Check: connectors.CheckRevoked, Entitlement: ent}
			deleted := connectors.VerifyRequest{Username: u, Check: connectors.CheckDeleted}
			check := func(req connectors.VerifyRequest, want bool, detail ...string) []recorded {
				t.Helper()
				v, reqs := verifyOnly(t, c, rec, req)
				assert.Equal(t, want, v.Verified, "%s: %s", req.Check, v.Detail)
				for _, d := range detail {
					assert.Contains(t, v.Detail, d)
				}
				return reqs
			}
			// revokedCheck also checks where the membership was read.
			revokedCheck := func(want bool) {
				t.Helper()
				reqs := check(revoked, want, "read from "+tc.from)
				var groupReads []string
				for _, r := range reqs {
					if strings.HasPrefix(r.Path, "/scim/v2/Groups/") {
						groupReads = append(groupReads, r.Path)
					}
					if r.Path == "/scim/v2/Groups" {
						assert.NotEmpty(t, r.Filter, "Verify never lists every group")
					}
				}
				if tc.from == fromMemberList {
					assert.Len(t, groupReads, 1, "the one group is read, once")
				} else {
					assert.Empty(t, groupReads, "the group's member list is not downloaded")
				}
			}

			_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: connectors.Account{Username: u, EmployeeID: "E-1"}})
			require.NoError(t, err)
			_, err = c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: ent})
			require.NoError(t, err)
			check(disabled, false, "active=true", u)
			revokedCheck(false)
			check(deleted, false, "still exists")

			_, err = c.DisableAccount(ctx, connectors.AccountRequest{Username: u})
			require.NoError(t, err)
			check(disabled, true, "active=false")

			_, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: ent})
			require.NoError(t, err)
			revokedCheck(true)
			check(connectors.VerifyRequest{Username: u, Check: connectors.CheckRevoked, Entitlement: "no-such-group"},
				true, `no group named "no-such-group"`)

			_, err = c.EnableAccount(ctx, connectors.AccountRequest{Username: u})
			require.NoError(t, err)
			check(disabled, false, "active=true")

			_, err = c.DeleteAccount(ctx, connectors.AccountRequest{Username: u})
			require.NoError(t, err)
			check(deleted, true, "no SCIM user")
			check(revoked, true, "holds no group")
			check(disabled, false, "not a disabled one")

			assertStandardRequests(t, rec)
		})
	}
}

// TestVerifyCatchesIgnoredDisable runs against a server that answers the
// disable with success and keeps the user active, as broken SaaS apps do:
// DisableAccount succeeds, and Verify says the disable is not in effect.
func TestVerifyCatchesIgnoredDisable(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(http.Handler) http.Handler
	}{
		{name: "standard server"},
		{name: "dialect server", wrap: dialect},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			wrap := rec.wrap
			if tc.wrap != nil {
				wrap = func(h http.Handler) http.Handler { return rec.wrap(tc.wrap(h)) }
			}
			srv := scimapptest.Start(t, scimapptest.Options{IgnoreDeactivate: true, Wrap: wrap})
			c := newClient(t, srv, nil)
			ctx := testCtx(t)
			const u = "stubborn"
			_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: connectors.Account{Username: u, EmployeeID: "E-2"}})
			require.NoError(t, err)

			r, err := c.DisableAccount(ctx, connectors.AccountRequest{Username: u})
			require.NoError(t, err, "the server answered the disable with success")
			assert.True(t, r.Changed)
			patches := rec.requests(http.MethodPatch)
			require.Len(t, patches, 1)
			assert.JSONEq(t, `{"schemas":["`+schemaPatchOp+`"],"Operations":[{"op":"replace","path":"active","value":false}]}`,
				string(patches[0].Body), "the disable was a standard one")
			ok, err := srv.Store.CanLogin(ctx, u)
			require.NoError(t, err)
			require.True(t, ok, "the server ignored it")

			v, _ := verifyOnly(t, c, rec, connectors.VerifyRequest{Username: u, Check: connectors.CheckDisabled})
			assert.False(t, v.Verified, v.Detail)
			assert.Contains(t, v.Detail, `"stubborn"`)
			assert.Contains(t, v.Detail, "still reads active=true")
			assert.Contains(t, v.Detail, "disable it in the application")
		})
	}
}

// TestVerifyMissingActiveReadsAsActive: a server that leaves "active" out
// of its Users says nothing about logins, so a disable is not verified
// even when the app did apply it.
func TestVerifyMissingActiveReadsAsActive(t *testing.T) {
	rec := &recorder{}
	srv := startServer(t, func(h http.Handler) http.Handler {
		return rec.wrap(editResponses(func(doc any) {
			eachUser(doc, func(u map[string]any) { delete(u, "active") })
		})(h))
	})
	c := newClient(t, srv, nil)
	ctx := testCtx(t)
	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: connectors.Account{Username: "quiet", EmployeeID: "E-3"}, Disabled: true})
	require.NoError(t, err)
	ok, err := srv.Store.CanLogin(ctx, "quiet")
	require.NoError(t, err)
	require.False(t, ok, "the app holds the user disabled")

	v, _ := verifyOnly(t, c, rec, connectors.VerifyRequest{Username: "quiet", Check: connectors.CheckDisabled})
	assert.False(t, v.Verified, v.Detail)
	assert.Contains(t, v.Detail, `no "active" attribute`)
}

// TestVerifyReadsTheUserByID: with a search index that lags behind writes,
// the userName search still shows the user as it was; Verify reads the
// user by id and sees the revocation.
func TestVerifyReadsTheUserByID(t *testing.T) {
	stale := &staleSearch{}
	rec := &recorder{}
	srv := startServer(t, func(h http.Handler) http.Handler { return rec.wrap(stale.wrap(h)) })
	c := newClient(t, srv, nil)
	ctx := testCtx(t)
	const u = "lagging"
	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: connectors.Account{Username: u, EmployeeID: "E-4"}})
	require.NoError(t, err)
	_, err = c.GetAccount(ctx, connectors.AccountRequest{Username: u}) // the search answer to replay
	require.NoError(t, err)
	stale.freeze()

	_, err = c.DisableAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	acct, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	require.False(t, acct.Disabled, "the search still shows the user active")
	v, _ := verifyOnly(t, c, rec, connectors.VerifyRequest{Username: u, Check: connectors.CheckDisabled})
	assert.True(t, v.Verified, v.Detail)

	id := userID(t, c, u)
	_, err = c.DeleteAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	v, _ = verifyOnly(t, c, rec, connectors.VerifyRequest{Username: u, Check: connectors.CheckDeleted})
	assert.True(t, v.Verified, v.Detail)
	assert.Contains(t, v.Detail, id, "the search found the user; its id answered 404")
	assert.Contains(t, v.Detail, "404")
	v, _ = verifyOnly(t, c, rec, connectors.VerifyRequest{Username: u, Check: connectors.CheckDisabled})
	assert.False(t, v.Verified, "a deleted user is not a disabled one: %s", v.Detail)
}

// TestVerifyUnreadableIsAnError: when the application cannot be read,
// Verify returns an error, never a "not verified" verification.
func TestVerifyUnreadableIsAnError(t *testing.T) {
	down := &fault{Status: http.StatusServiceUnavailable}
	var on atomic.Bool
	srv := startServer(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if on.Load() {
				down.wrap(h).ServeHTTP(w, r)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	c := newClient(t, srv, nil)
	ctx := testCtx(t)
	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: connectors.Account{Username: "unseen", EmployeeID: "E-5"}})
	require.NoError(t, err)
	on.Store(true)
	for _, req := range []connectors.VerifyRequest{
		{Username: "unseen", Check: connectors.CheckDisabled},
		{Username: "unseen", Check: connectors.CheckRevoked, Entitlement: "sales"},
		{Username: "unseen", Check: connectors.CheckDeleted},
	} {
		v, err := c.Verify(ctx, req)
		assert.Equal(t, connectors.KindUnavailable, connectors.KindOf(err), "%s: %v", req.Check, err)
		assert.False(t, v.Verified)
	}
}
