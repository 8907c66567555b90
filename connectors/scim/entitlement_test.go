package scim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/scimapp"
)

// groupNames lists every group's displayName on the server.
func groupNames(t *testing.T, c *Client) []string {
	t.Helper()
	var names []string
	err := listAll(testCtx(t), c, "test", "/Groups", []string{"attributes", "displayName"},
		func(g group) { names = append(names, g.DisplayName) })
	require.NoError(t, err)
	return names
}

func TestEnsureEntitlement(t *testing.T) {
	rec := &recorder{}
	srv := startServer(t, rec.wrap)
	c := newClient(t, srv, nil)
	ctx := testCtx(t)

	r, err := c.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: "auditors", Description: "not sent"})
	require.NoError(t, err)
	assert.True(t, r.Changed, "first call creates the group")
	gets, posts := rec.requests(http.MethodGet), rec.requests(http.MethodPost)
	require.Len(t, gets, 1)
	assert.Equal(t, `displayName eq "auditors"`, gets[0].Filter)
	require.Len(t, posts, 1)
	assert.Equal(t, "/scim/v2/Groups", posts[0].Path)
	assert.JSONEq(t, `{"schemas":["`+schemaGroup+`"],"displayName":"auditors"}`, string(posts[0].Body))

	rec.reset()
	for _, name := range []string{"auditors", "Auditors", "engineering"} {
		r, err = c.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: name})
		require.NoError(t, err)
		assert.False(t, r.Changed, "%q exists (displayName ignores case)", name)
	}
	assert.Empty(t, rec.requests(http.MethodPost), "nothing more is created")
	assert.ElementsMatch(t, append(scimapp.SeedGroups(), "auditors"), groupNames(t, c))

	user := "ensure-ent-user"
	_, err = c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: connectors.Account{Username: user, EmployeeID: "E1"}})
	require.NoError(t, err)
	g, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: user, Entitlement: "auditors"})
	require.NoError(t, err)
	assert.True(t, g.Changed)
	acct, err := c.GetAccount(ctx, connectors.AccountRequest{Username: user})
	require.NoError(t, err)
	assert.Equal(t, []string{"auditors"}, acct.Entitlements)
}

// TestEnsureEntitlementHostileNames: filter metacharacters match only
// themselves, so each name is created once (a decoy named like a broken
// escaper's search is not mistaken for it) and round-trips exactly.
func TestEnsureEntitlementHostileNames(t *testing.T) {
	srv := startServer(t, nil)
	c := newClient(t, srv, nil)
	ctx := testCtx(t)
	_, err := c.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: "q"})
	require.NoError(t, err)
	user := "hostile-ent-user"
	_, err = c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: connectors.Account{Username: user, EmployeeID: "E1"}})
	require.NoError(t, err)

	names := []string{`q"uote`, `back\slash`, `q" or displayName pr or displayName eq "`, "new\nline\x01", "*", "José 山田 🚀"}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			r, err := c.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: name})
			require.NoError(t, err)
			assert.True(t, r.Changed, "the lookup must not match the decoy or anyone else")
			r, err = c.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: name})
			require.NoError(t, err)
			assert.False(t, r.Changed)
			g, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: user, Entitlement: name})
			require.NoError(t, err)
			assert.True(t, g.Changed)
		})
	}
	assert.ElementsMatch(t, append(append(scimapp.SeedGroups(), "q"), names...), groupNames(t, c))
	acct, err := c.GetAccount(ctx, connectors.AccountRequest{Username: user})
	require.NoError(t, err)
	assert.ElementsMatch(t, names, acct.Entitlements)
}

func TestEnsureEntitlementRefusesBadNames(t *testing.T) {
	rec := &recorder{}
	srv := startServer(t, rec.wrap)
	c := newClient(t, srv, nil)
	for _, name := range []string{"", "x\xffy"} {
		_, err := c.EnsureEntitlement(testCtx(t), connectors.EnsureEntitlementRequest{Name: name})
		require.Error(t, err)
		assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err), "%v", err)
	}
	assert.Empty(t, rec.requests(""), "refused before any request")
}

// TestEnsureEntitlementConflict: a 409 on create means someone else made
// the group first, which is success when it can now be found, and is
// reported when it cannot.
func TestEnsureEntitlementConflict(t *testing.T) {
	isPost := func(r *http.Request) bool { return r.Method == http.MethodPost }
	t.Run("created concurrently", func(t *testing.T) {
		// The real server creates the group, but the client is told 409.
		raced := func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !isPost(r) {
					next.ServeHTTP(w, r)
					return
				}
				next.ServeHTTP(httptest.NewRecorder(), r)
				w.Header().Set("Content-Type", mediaType)
				w.WriteHeader(http.StatusConflict)
				_ = json.NewEncoder(w).Encode(map[string]any{"status": "409", "scimType": "uniqueness"})
			})
		}
		c := newClient(t, startServer(t, raced), nil)
		r, err := c.EnsureEntitlement(testCtx(t), connectors.EnsureEntitlementRequest{Name: "raced"})
		require.NoError(t, err)
		assert.False(t, r.Changed, "another client created it")
		assert.Contains(t, groupNames(t, c), "raced")
	})
	t.Run("conflict with nothing found", func(t *testing.T) {
		f := &fault{Status: http.StatusConflict, Match: isPost}
		c := newClient(t, startServer(t, f.wrap), nil)
		_, err := c.EnsureEntitlement(testCtx(t), connectors.EnsureEntitlementRequest{Name: "ghost"})
		require.Error(t, err)
		assert.Equal(t, connectors.KindConflict, connectors.KindOf(err), "%v", err)
		assert.NotContains(t, err.Error(), "test-token")
	})
}
