package postgres

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/testenv"
)

// roleInfo is what the tests read about a role, out of band.
type roleInfo struct {
	canLogin, super, createDB, createRole, replication, bypassRLS bool
	comment                                                       string
}

func (f *fixture) roleInfo(name string) roleInfo {
	f.t.Helper()
	var r roleInfo
	require.NoError(f.t, f.admin.QueryRow(testenv.Context(f.t), `SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole,
		rolreplication, rolbypassrls, COALESCE(shobj_description(oid, 'pg_authid'), '')
		FROM pg_roles WHERE rolname = $1`, name).Scan(&r.canLogin, &r.super, &r.createDB, &r.createRole,
		&r.replication, &r.bypassRLS, &r.comment))
	return r
}

func TestEnsureEntitlement(t *testing.T) {
	f := newFixture(t)
	c, p, ctx := f.client, f.prefix, testenv.Context(t)
	name := p + "analytics_read"
	const description = `Read-only access; it's "the" replica \ 100%`

	r, err := c.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: name, Description: description})
	require.NoError(t, err)
	assert.True(t, r.Changed, "first call creates the role")
	r, err = c.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: name, Description: "changed"})
	require.NoError(t, err)
	assert.False(t, r.Changed, "second call finds it")

	assert.Equal(t, roleInfo{comment: description}, f.roleInfo(name),
		"a NOLOGIN role without privileges, described once and left alone afterwards")

	// It is a group, not an account: not listed, not readable, not
	// something the connector will disable or delete.
	assert.NotContains(t, f.listAll(ctx), name)
	_, err = c.GetAccount(ctx, connectors.AccountRequest{Username: name})
	assert.True(t, connectors.IsNotFound(err), "%v", err)
	_, err = c.DeleteAccount(ctx, connectors.AccountRequest{Username: name})
	assert.Equal(t, connectors.KindConflict, connectors.KindOf(err), "%v", err)
	assert.True(t, f.roleExists(name))

	user := p + "user"
	_, err = c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: account(user)})
	require.NoError(t, err)
	g, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: user, Entitlement: name})
	require.NoError(t, err)
	assert.True(t, g.Changed)
	acct, err := c.GetAccount(ctx, connectors.AccountRequest{Username: user})
	require.NoError(t, err)
	assert.Equal(t, []string{name}, acct.Entitlements)

	// Without a description the role has no comment.
	bare := p + "bare"
	r, err = c.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: bare})
	require.NoError(t, err)
	assert.True(t, r.Changed)
	assert.Equal(t, roleInfo{}, f.roleInfo(bare))
}

// TestEnsureEntitlementHostileNames: every name is either refused before
// reaching the server, or becomes a group role of exactly that name that
// can be granted, while a canary the injections aim at survives.
func TestEnsureEntitlementHostileNames(t *testing.T) {
	f := newFixture(t)
	c, p := f.client, f.prefix
	canary := p + "canary"
	f.createGroup(canary, "")
	user := p + "user"
	_, err := c.EnsureAccount(testenv.Context(t), connectors.EnsureAccountRequest{Account: account(user)})
	require.NoError(t, err)

	tests := []struct {
		name, group string
		want        connectors.ErrorKind // "" when the name is valid
	}{
		{"double quote injection", p + `g"; DROP ROLE "` + canary + `"; --`, ""},
		{"attribute injection", p + `g" SUPERUSER --`, ""},
		{"single quote injection", p + `g'; DROP ROLE ` + canary + `; --`, ""},
		{"backslash", p + `g\`, ""},
		{"dollar quoting", p + `$$ g $$`, ""},
		{"spaces and non-ASCII", p + " José 山田 ", ""},
		{"63 bytes", p + strings.Repeat("g", 63-len(p)), ""},
		{"64 bytes", p + strings.Repeat("g", 64-len(p)), connectors.KindInvalid},
		{"empty", "", connectors.KindInvalid},
		{"NUL", p + "g\x00h", connectors.KindInvalid},
		{"newline", p + "g\nh", connectors.KindInvalid},
		{"invalid UTF-8", p + "g\xff", connectors.KindInvalid},
		{"public", "public", connectors.KindInvalid},
		{"predefined role", "pg_" + p, connectors.KindPermission},
		{"existing predefined role", "pg_monitor", connectors.KindPermission},
	}
	var created []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testenv.Context(t)
			r, err := c.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: tt.group, Description: tt.group})
			if tt.want != "" {
				require.Error(t, err)
				assert.Equal(t, tt.want, connectors.KindOf(err), "%v", err)
				assert.ElementsMatch(t, append([]string{canary, user}, created...), f.prefixedRoles(), "a refused name created nothing")
				return
			}
			require.NoError(t, err)
			assert.True(t, r.Changed)
			created = append(created, tt.group)
			assert.ElementsMatch(t, append([]string{canary, user}, created...), f.prefixedRoles(), "exactly the intended role exists")
			assert.Equal(t, roleInfo{comment: tt.group}, f.roleInfo(tt.group), "no privilege leaked in")

			g, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: user, Entitlement: tt.group})
			require.NoError(t, err)
			assert.True(t, g.Changed)
		})
	}
	assert.True(t, f.roleExists(canary), "canary survived every injection")
	acct, err := c.GetAccount(testenv.Context(t), connectors.AccountRequest{Username: user})
	require.NoError(t, err)
	assert.ElementsMatch(t, created, acct.Entitlements)
}

// TestEnsureEntitlementExistingRoles: a role GrantEntitlement would use is
// accepted as it is; one it would refuse is reported.
func TestEnsureEntitlementExistingRoles(t *testing.T) {
	f := newFixture(t)
	c, p, ctx := f.client, f.prefix, testenv.Context(t)
	f.createGroup(p+"plain", "")
	f.exec("COMMENT ON ROLE " + qi(p+"plain") + " IS 'made by hand'")
	f.exec("CREATE ROLE " + qi(p+"login") + " LOGIN")
	f.createGroup(p+"super", "SUPERUSER")
	f.createGroup(p+"leads", "")
	f.exec("GRANT " + qi(p+"super") + " TO " + qi(p+"leads"))
	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: account(p + "acct")})
	require.NoError(t, err)

	tests := []struct {
		name string
		want connectors.ErrorKind // "" when accepted
	}{
		{p + "plain", ""},
		{p + "login", connectors.KindConflict},
		{p + "acct", connectors.KindConflict},
		{p + "super", connectors.KindPermission},
		{p + "leads", connectors.KindPermission},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := c.EnsureEntitlement(testenv.Context(t), connectors.EnsureEntitlementRequest{Name: tt.name, Description: "x"})
			if tt.want == "" {
				require.NoError(t, err)
				assert.False(t, r.Changed)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.want, connectors.KindOf(err), "%v", err)
		})
	}
	assert.Equal(t, "made by hand", f.roleInfo(p+"plain").comment, "an existing group is left alone")
	acct, err := c.GetAccount(ctx, connectors.AccountRequest{Username: p + "acct"})
	require.NoError(t, err)
	assert.Equal(t, "E123456", acct.EmployeeID, "the account's marker is untouched")
}

func TestEnsureEntitlementDescriptions(t *testing.T) {
	f := newFixture(t)
	c, p := f.client, f.prefix
	for _, d := range []string{markerPrefix + `{"employee_id":"E1"}`, "x\x00y", "x\xff", strings.Repeat("d", maxAttrLen+1)} {
		_, err := c.EnsureEntitlement(testenv.Context(t), connectors.EnsureEntitlementRequest{Name: p + "g", Description: d})
		require.Error(t, err)
		assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err), "%v", err)
	}
	assert.Empty(t, f.prefixedRoles(), "nothing was created")
}
