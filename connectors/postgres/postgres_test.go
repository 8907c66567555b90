package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/connectors/conformance"
	"github.com/provisio-dev/provisio/internal/testenv"
)

func TestConformance(t *testing.T) {
	f := newFixture(t)
	groups := []string{f.prefix + "grpa", f.prefix + "grpb"}
	for _, g := range groups {
		f.createGroup(g, "")
	}
	conformance.Run(t, conformance.Harness{
		Connector:    f.client,
		Prefix:       f.prefix,
		Entitlements: groups,
		Login:        f.loginOnce,
	})
}

func account(username string) connectors.Account {
	return connectors.Account{Username: username, EmployeeID: "E123456", GivenName: "Ada",
		FamilyName: "Lovelace", DisplayName: "Ada Lovelace", Email: "ada@example.com"}
}

// TestHostileRoleNames feeds names that break naive SQL building. Each is
// either refused as InvalidInput before reaching the server, or becomes a
// role of exactly that name that every operation handles, while a canary
// role that the injections target survives and no other role appears.
func TestHostileRoleNames(t *testing.T) {
	f := newFixture(t)
	c, p := f.client, f.prefix
	canary := p + "canary"
	f.createGroup(canary, "")
	group := p + `g"; DROP ROLE "` + canary + `"; --`
	f.createGroup(group, "")

	fill := func(unit string, size int) string { // p + unit repeated up to size bytes
		return p + strings.Repeat(unit, (size-len(p))/len(unit))
	}
	tests := []struct {
		name     string
		username string
		valid    bool
	}{
		{"double quote injection", p + `x"; DROP ROLE admin; --`, true},
		{"injection aimed at the canary", p + `x"; DROP ROLE "` + canary + `"; --`, true},
		{"attribute injection", p + `x" SUPERUSER CREATEROLE --`, true},
		{"single quote injection", p + `x'; DROP ROLE ` + canary + `; --`, true},
		{"lone double quote", p + `"`, true},
		{"doubled double quote", p + `""`, true},
		{"backslash", p + `x\`, true},
		{"backslash quote", p + `x\'`, true},
		{"dollar quoting", p + `$$ x $$`, true},
		{"placeholder", p + `$1`, true},
		{"semicolon", p + `x;y`, true},
		{"comment markers", p + `x*/ /*--`, true},
		{"spaces", p + ` x y `, true},
		{"non-ASCII", p + "José Muñoz 山田 🚀", true},
		{"uppercase", p + "UPPER", true},
		{"like wildcards", p + `x%_`, true},
		{"63 bytes", fill("a", 63), true},
		{"63 bytes of two-byte letters", fill("é", 63), true},
		{"64 bytes", fill("a", 63) + "a", false},
		{"64 bytes with a two-byte letter", fill("a", 62) + "é", false},
		{"empty", "", false},
		{"NUL", p + "x\x00y", false},
		{"newline", p + "x\ny", false},
		{"tab", p + "x\ty", false},
		{"DEL", p + "x\x7f", false},
		{"C1 control", p + "x\u0085", false},
		{"invalid UTF-8", p + "x\xff", false},
		{"reserved pg_ prefix", "pg_" + p, false},
		{"public pseudo-role", "public", false},
		{"none", "none", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testenv.Context(t)
			u := tt.username
			_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: account(u)})
			if !tt.valid {
				require.Error(t, err)
				assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err), "%v", err)
				for _, op := range []func() error{
					func() error { _, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u}); return err },
					func() error { _, err := c.DisableAccount(ctx, connectors.AccountRequest{Username: u}); return err },
					func() error { _, err := c.DeleteAccount(ctx, connectors.AccountRequest{Username: u}); return err },
					func() error {
						_, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: p + "ok", Entitlement: u})
						return err
					},
				} {
					err := op()
					require.Error(t, err)
					assert.Contains(t, []connectors.ErrorKind{connectors.KindInvalid, connectors.KindPermission}, connectors.KindOf(err), "%v", err)
				}
				assert.Equal(t, []string{canary, group}, f.prefixedRoles(), "a refused name created nothing")
				return
			}
			require.NoError(t, err)
			assert.ElementsMatch(t, []string{canary, group, u}, f.prefixedRoles(), "exactly the intended role exists")
			var super, createRole bool
			require.NoError(t, f.admin.QueryRow(ctx, `SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = $1`, u).Scan(&super, &createRole))
			assert.False(t, super || createRole, "no privilege attribute leaked in")

			got, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u})
			require.NoError(t, err)
			assert.Equal(t, u, got.Username)

			_, err = c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: group})
			require.NoError(t, err)
			got, err = c.GetAccount(ctx, connectors.AccountRequest{Username: u})
			require.NoError(t, err)
			assert.Equal(t, []string{group}, got.Entitlements)
			r, err := c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: group})
			require.NoError(t, err)
			assert.True(t, r.Changed)
			_, err = c.DisableAccount(ctx, connectors.AccountRequest{Username: u})
			require.NoError(t, err)
			_, err = c.EnableAccount(ctx, connectors.AccountRequest{Username: u})
			require.NoError(t, err)
			d, err := c.DeleteAccount(ctx, connectors.AccountRequest{Username: u})
			require.NoError(t, err)
			assert.True(t, d.Deleted)
			assert.False(t, f.roleExists(u))
			assert.Equal(t, []string{canary, group}, f.prefixedRoles(), "the canary and the group survive")
		})
	}
	assert.True(t, f.roleExists(canary), "canary survived every injection")
}

// TestDisableEndsSessions proves that a disable kills live sessions, not
// only future logins.
func TestDisableEndsSessions(t *testing.T) {
	f := newFixture(t)
	c := f.client
	t.Run("disable ends sessions", func(t *testing.T) {
		ctx := testenv.Context(t)
		u := f.prefix + "sess"
		_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: account(u)})
		require.NoError(t, err)

		sessions := make([]*pgx.Conn, 2)
		for i := range sessions {
			sessions[i], err = f.login(ctx, u)
			require.NoError(t, err, "an enabled account can log in")
			defer sessions[i].Close(context.Background())
			_, err = sessions[i].Exec(ctx, "SELECT 1")
			require.NoError(t, err)
		}

		d, err := c.DisableAccount(ctx, connectors.AccountRequest{Username: u})
		require.NoError(t, err)
		assert.True(t, d.Changed)
		assert.Equal(t, len(sessions), d.SessionsEnded, "every live session is reported ended")

		for _, s := range sessions {
			_, err = s.Exec(ctx, "SELECT 1")
			assert.Error(t, err, "a session of a disabled account is dead")
		}
		assert.Error(t, f.loginOnce(ctx, u), "a disabled account cannot log in again")

		var left int
		require.NoError(t, f.admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE usename = $1`, u).Scan(&left))
		assert.Zero(t, left, "no backend of the role remains")

		d, err = c.DisableAccount(ctx, connectors.AccountRequest{Username: u})
		require.NoError(t, err)
		assert.Equal(t, connectors.DisableResponse{}, d, "a second disable changes and ends nothing")
	})
}

// TestUnmanagedRoleIsRefused checks that roles provisio did not create are
// never changed.
func TestUnmanagedRoleIsRefused(t *testing.T) {
	f := newFixture(t)
	c := f.client
	ctx := testenv.Context(t)
	hand := f.prefix + "hand"
	f.exec("CREATE ROLE " + qi(hand) + " LOGIN")
	group := f.prefix + "grp"
	f.createGroup(group, "")

	conflict := func(t *testing.T, err error) {
		t.Helper()
		require.Error(t, err)
		assert.Equal(t, connectors.KindConflict, connectors.KindOf(err), "%v", err)
	}
	checkRefused := func(t *testing.T, username string) {
		_, err := c.DisableAccount(ctx, connectors.AccountRequest{Username: username})
		conflict(t, err)
		_, err = c.DeleteAccount(ctx, connectors.AccountRequest{Username: username})
		conflict(t, err)
		_, err = c.EnableAccount(ctx, connectors.AccountRequest{Username: username})
		conflict(t, err)
		_, err = c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: account(username)})
		conflict(t, err)
		_, err = c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: username, Entitlement: group})
		conflict(t, err)
		_, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: username, Entitlement: group})
		conflict(t, err)
	}

	handRefused := t.Run("role created by hand", func(t *testing.T) {
		checkRefused(t, hand)
		var canLogin bool
		var comment *string
		require.NoError(t, f.admin.QueryRow(ctx, `SELECT rolcanlogin, shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1`, hand).Scan(&canLogin, &comment))
		assert.True(t, canLogin, "still enabled")
		assert.Nil(t, comment, "not marked as managed")
		require.NoError(t, f.loginOnce(ctx, hand), "its sessions were not blocked")

		got, err := c.GetAccount(ctx, connectors.AccountRequest{Username: hand})
		require.NoError(t, err, "an unmanaged login role can be read")
		assert.Empty(t, got.EmployeeID)
		list := f.listAll(ctx)
		assert.NotContains(t, list, hand, "unmanaged roles are not listed")
	})

	// The same refusal on the bootstrap superuser. The hand-made role above
	// exercises the identical path first, and a failure there stops the
	// test before a regression could lock the cluster's superuser out.
	if !handRefused {
		t.Fatal("not trying the postgres superuser: the hand-made role was not refused")
	}
	t.Run("postgres superuser", func(t *testing.T) {
		checkRefused(t, "postgres")
		require.NoError(t, f.loginOnce(ctx, "postgres"))
	})

	t.Run("group role created by hand is not an account", func(t *testing.T) {
		_, err := c.GetAccount(ctx, connectors.AccountRequest{Username: group})
		assert.True(t, connectors.IsNotFound(err), "%v", err)
	})
}

func (f *fixture) listAll(ctx context.Context) []string {
	f.t.Helper()
	var names []string
	token := ""
	for {
		resp, err := f.client.ListAccounts(ctx, connectors.ListAccountsRequest{PageToken: token})
		require.NoError(f.t, err)
		for _, a := range resp.Accounts {
			names = append(names, a.Username)
		}
		if token = resp.NextPageToken; token == "" {
			return names
		}
	}
}

// TestEntitlementSafety checks that privileged roles are never granted or
// revoked, whether directly or through a group that leads to them.
func TestEntitlementSafety(t *testing.T) {
	f := newFixture(t)
	c, p := f.client, f.prefix
	ctx := testenv.Context(t)
	u := p + "user"
	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: account(u)})
	require.NoError(t, err)
	other := p + "other"
	_, err = c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: account(other), Disabled: true})
	require.NoError(t, err)

	f.createGroup(p+"super", "SUPERUSER")
	f.createGroup(p+"creator", "CREATEROLE")
	f.createGroup(p+"repl", "REPLICATION")
	f.createGroup(p+"bypass", "BYPASSRLS")
	f.createGroup(p+"chain", "")
	f.exec("GRANT " + qi(p+"super") + " TO " + qi(p+"chain"))
	f.createGroup(p+"files", "")
	f.exec("GRANT pg_read_server_files TO " + qi(p+"files"))
	f.exec("CREATE ROLE " + qi(p+"loginrole") + " LOGIN")

	tests := []struct {
		name        string
		entitlement string
		want        connectors.ErrorKind
	}{
		{"superuser group", p + "super", connectors.KindPermission},
		{"createrole group", p + "creator", connectors.KindPermission},
		{"replication group", p + "repl", connectors.KindPermission},
		{"bypassrls group", p + "bypass", connectors.KindPermission},
		{"group inside a superuser group", p + "chain", connectors.KindPermission},
		{"group inside a predefined role", p + "files", connectors.KindPermission},
		{"predefined role", "pg_read_all_data", connectors.KindPermission},
		{"bootstrap superuser", "postgres", connectors.KindPermission},
		{"login role", p + "loginrole", connectors.KindInvalid},
		{"another person's (disabled) account", other, connectors.KindInvalid},
		{"public", "public", connectors.KindInvalid},
		{"missing group", p + "nosuch", connectors.KindNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: tt.entitlement})
			require.Error(t, err)
			assert.Equal(t, tt.want, connectors.KindOf(err), "%v", err)
			if tt.want != connectors.KindNotFound {
				_, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: tt.entitlement})
				require.Error(t, err)
				assert.Equal(t, tt.want, connectors.KindOf(err), "%v", err)
			}
			got, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u})
			require.NoError(t, err)
			assert.Empty(t, got.Entitlements, "nothing was granted")
		})
	}
	t.Run("revoking a missing group changes nothing", func(t *testing.T) {
		r, err := c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: p + "nosuch"})
		require.NoError(t, err)
		assert.False(t, r.Changed)
	})
}

// TestDeleteRoleOwningObjects deletes a role that owns a table in the
// connected database and a whole database with a table: objects and data
// survive, owned by the connector's role, and the role is gone.
func TestDeleteRoleOwningObjects(t *testing.T) {
	f := newFixture(t)
	c := f.client
	ctx := testenv.Context(t)
	u := f.prefix + "owner"
	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: account(u)})
	require.NoError(t, err)

	table := f.prefix + "_owned"
	shared := f.prefix + "_shared"
	f.exec("CREATE TABLE " + qi(table) + " (id int)")
	t.Cleanup(func() { _, _ = f.admin.Exec(context.Background(), "DROP TABLE IF EXISTS "+qi(table)) })
	f.exec("INSERT INTO " + qi(table) + " VALUES (42)")
	f.exec("ALTER TABLE " + qi(table) + " OWNER TO " + qi(u))
	f.exec("CREATE TABLE " + qi(shared) + " (id int)")
	t.Cleanup(func() { _, _ = f.admin.Exec(context.Background(), "DROP TABLE IF EXISTS "+qi(shared)) })
	f.exec("GRANT SELECT ON " + qi(shared) + " TO " + qi(u))

	var b [6]byte
	_, _ = rand.Read(b[:])
	db := "provisio_test_" + hex.EncodeToString(b[:])
	f.exec("CREATE DATABASE " + qi(db) + " OWNER " + qi(u))
	t.Cleanup(func() {
		_, _ = f.admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+qi(db)+" WITH (FORCE)")
	})
	cfg, err := pgx.ParseConfig(f.url)
	require.NoError(t, err)
	cfg.Database = db
	other, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	for _, sql := range []string{"CREATE TABLE remote (id int)", "INSERT INTO remote VALUES (7)", "ALTER TABLE remote OWNER TO " + qi(u)} {
		_, err = other.Exec(ctx, sql)
		require.NoError(t, err)
	}

	// A plain DROP ROLE would fail here: that is what delete must handle.
	_, err = f.admin.Exec(ctx, "DROP ROLE "+qi(u))
	require.Error(t, err)

	r, err := c.DeleteAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.True(t, r.Deleted)
	assert.False(t, f.roleExists(u), "role dropped")

	var owner string
	var n int
	require.NoError(t, f.admin.QueryRow(ctx, `SELECT tableowner::text, (SELECT id FROM `+qi(table)+`) FROM pg_tables WHERE tablename = $1`, table).Scan(&owner, &n))
	assert.Equal(t, "postgres", owner, "table reassigned to the connector's role")
	assert.Equal(t, 42, n, "data kept")
	require.NoError(t, other.QueryRow(ctx, `SELECT tableowner::text, (SELECT id FROM remote) FROM pg_tables WHERE tablename = 'remote'`).Scan(&owner, &n))
	assert.Equal(t, "postgres", owner, "table in another database reassigned")
	assert.Equal(t, 7, n)
	require.NoError(t, f.admin.QueryRow(ctx, `SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1`, db).Scan(&owner))
	assert.Equal(t, "postgres", owner, "database reassigned")
	_ = other.Close(ctx)

	r, err = c.DeleteAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.False(t, r.Deleted)
}

// TestRolePrefix checks that usernames map to prefixed roles and back, and
// that listing stays inside the prefix.
func TestRolePrefix(t *testing.T) {
	f := newFixture(t)
	ctx := testenv.Context(t)
	rolePrefix := f.prefix + "_u_"
	pc, err := New(ctx, Config{URL: f.url, Name: "pg-prefixed", RolePrefix: rolePrefix})
	require.NoError(t, err)
	defer pc.Close()
	assert.Equal(t, "pg-prefixed", pc.Name())

	_, err = pc.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: account("ada")})
	require.NoError(t, err)
	assert.True(t, f.roleExists(rolePrefix+"ada"))
	got, err := pc.GetAccount(ctx, connectors.AccountRequest{Username: "ada"})
	require.NoError(t, err)
	assert.Equal(t, "ada", got.Username)
	assert.Equal(t, "E123456", got.EmployeeID)

	// An account outside the prefix, made by the unprefixed client.
	_, err = f.client.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: account(f.prefix + "outside")})
	require.NoError(t, err)
	resp, err := pc.ListAccounts(ctx, connectors.ListAccountsRequest{})
	require.NoError(t, err)
	require.Len(t, resp.Accounts, 1)
	assert.Equal(t, "ada", resp.Accounts[0].Username)

	_, err = pc.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: account(strings.Repeat("a", 64-len(rolePrefix)))})
	assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err), "the prefix counts against the length limit: %v", err)

	_, err = New(ctx, Config{URL: f.url, RolePrefix: "pg_x"})
	assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err))
}

// TestEnsureRefusesAnotherEmployee checks that an existing managed role is
// never taken over by a different person.
func TestEnsureRefusesAnotherEmployee(t *testing.T) {
	f := newFixture(t)
	ctx := testenv.Context(t)
	u := f.prefix + "taken"
	_, err := f.client.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: account(u)})
	require.NoError(t, err)
	a := account(u)
	a.EmployeeID = "E654321"
	_, err = f.client.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: a})
	assert.Equal(t, connectors.KindConflict, connectors.KindOf(err), "%v", err)
	a.EmployeeID = ""
	_, err = f.client.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: a})
	assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err), "%v", err)
	got, err := f.client.GetAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.Equal(t, "E123456", got.EmployeeID)
}

func TestBadPageToken(t *testing.T) {
	f := newFixture(t)
	for _, tok := range []string{"!!", "djE6", encodePageToken("x\x00"), "eDp5"} {
		_, err := f.client.ListAccounts(testenv.Context(t), connectors.ListAccountsRequest{PageToken: tok})
		assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err), "token %q: %v", tok, err)
	}
}

// TestErrorsHideTheURL checks that neither the URL nor the password leaks
// into error texts.
func TestErrorsHideTheURL(t *testing.T) {
	const password = "s3cret-Pa55word"
	tests := []struct {
		name string
		url  string
		want connectors.ErrorKind
	}{
		{"nothing listens", "postgres://bob:" + password + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", connectors.KindUnavailable},
		{"unparsable", "postgres://bob:" + password + "@[::1/db", connectors.KindInvalid},
		{"bad key value", "host=127.0.0.1 password=" + password + " port=notaport", connectors.KindInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := New(ctx, Config{URL: tt.url})
			require.Error(t, err)
			assert.Equal(t, tt.want, connectors.KindOf(err), "%v", err)
			assert.NotContains(t, err.Error(), password)
			assert.NotContains(t, err.Error(), tt.url)
		})
	}
}
