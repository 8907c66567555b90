package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/testenv"
)

// TestVerify puts one role per case into a state, by the connector or
// behind its back, and checks what Verify reads back. Expected details
// name the role as ROLE and the group as GROUP; a setup may add fragments
// only known at run time (session pids).
func TestVerify(t *testing.T) {
	f := newFixture(t)
	c, p := f.client, f.prefix
	group := p + "grp"
	f.createGroup(group, "")

	ensure := func(t *testing.T, u string, disabled bool) {
		t.Helper()
		_, err := c.EnsureAccount(testenv.Context(t), connectors.EnsureAccountRequest{Account: account(u), Disabled: disabled})
		require.NoError(t, err)
	}
	grant := func(t *testing.T, u string) {
		t.Helper()
		_, err := c.GrantEntitlement(testenv.Context(t), connectors.EntitlementRequest{Username: u, Entitlement: group})
		require.NoError(t, err)
	}
	// session logs in as u and keeps the session open until the test ends.
	session := func(t *testing.T, u string) uint32 {
		t.Helper()
		ctx := testenv.Context(t)
		conn, err := f.login(ctx, u)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		_, err = conn.Exec(ctx, "SELECT 1")
		require.NoError(t, err)
		return conn.PgConn().PID()
	}
	pids := func(ps ...uint32) string {
		s := make([]string, len(ps))
		for i, pid := range ps {
			s[i] = strconv.FormatUint(uint64(pid), 10)
		}
		if len(s) == 1 {
			return "(pid " + s[0] + ")"
		}
		return "(pids " + strings.Join(s, ", ") + ")"
	}

	tests := []struct {
		name  string
		check connectors.Check
		setup func(t *testing.T, u string) []string
		want  bool
		// detail holds fragments the detail must contain; absent, fragments
		// it must not.
		detail, absent []string
	}{
		{
			name: "enabled account is not disabled", check: connectors.CheckDisabled,
			setup:  func(t *testing.T, u string) []string { ensure(t, u, false); return nil },
			detail: []string{`role "ROLE" can still log in`},
			absent: []string{"session"},
		},
		{
			name: "account created disabled without sessions", check: connectors.CheckDisabled,
			setup:  func(t *testing.T, u string) []string { ensure(t, u, true); return nil },
			want:   true,
			detail: []string{`role "ROLE" cannot log in and has no open session`},
		},
		{
			name: "NOLOGIN behind the connector's back leaves a live session", check: connectors.CheckDisabled,
			setup: func(t *testing.T, u string) []string {
				ensure(t, u, false)
				pid := session(t, u)
				f.exec("ALTER ROLE " + qi(u) + " NOLOGIN")
				return []string{pids(pid)}
			},
			detail: []string{"1 session of the role is still open"},
			absent: []string{"can still log in"},
		},
		{
			name: "enabled account with two sessions names both problems", check: connectors.CheckDisabled,
			setup: func(t *testing.T, u string) []string {
				ensure(t, u, false)
				a, b := session(t, u), session(t, u)
				return []string{pids(min(a, b), max(a, b))}
			},
			detail: []string{`role "ROLE" can still log in; 2 sessions of the role are still open`},
		},
		{
			name: "missing account is not disabled", check: connectors.CheckDisabled,
			setup:  func(t *testing.T, u string) []string { return nil },
			detail: []string{`role "ROLE" does not exist`},
		},
		{
			name: "unmanaged LOGIN role is not disabled", check: connectors.CheckDisabled,
			setup:  func(t *testing.T, u string) []string { f.exec("CREATE ROLE " + qi(u) + " LOGIN"); return nil },
			detail: []string{`role "ROLE" can still log in (it is not managed by provisio)`},
		},
		{
			// GetAccount reads such a role as no account: not a disable either.
			name: "unmanaged NOLOGIN role is not a disabled account", check: connectors.CheckDisabled,
			setup:  func(t *testing.T, u string) []string { f.createGroup(u, ""); return nil },
			detail: []string{`role "ROLE" is a NOLOGIN role provisio does not manage, not an account`},
		},
		{
			name: "held entitlement is not revoked", check: connectors.CheckRevoked,
			setup:  func(t *testing.T, u string) []string { ensure(t, u, false); grant(t, u); return nil },
			detail: []string{`role "ROLE" is still a member of "GROUP"`},
		},
		{
			name: "entitlement revoked by the connector", check: connectors.CheckRevoked,
			setup: func(t *testing.T, u string) []string {
				ensure(t, u, false)
				grant(t, u)
				_, err := c.RevokeEntitlement(testenv.Context(t), connectors.EntitlementRequest{Username: u, Entitlement: group})
				require.NoError(t, err)
				return nil
			},
			want:   true,
			detail: []string{`role "ROLE" is not a member of "GROUP"`},
		},
		{
			name: "membership revoked behind the connector's back", check: connectors.CheckRevoked,
			setup: func(t *testing.T, u string) []string {
				ensure(t, u, false)
				grant(t, u)
				f.exec("REVOKE " + qi(group) + " FROM " + qi(u))
				return nil
			},
			want:   true,
			detail: []string{`role "ROLE" is not a member of "GROUP"`},
		},
		{
			name: "missing account holds nothing", check: connectors.CheckRevoked,
			setup:  func(t *testing.T, u string) []string { return nil },
			want:   true,
			detail: []string{`role "ROLE" does not exist, so it holds nothing`},
		},
		{
			// Stricter than GetAccount, which reads this role as no account:
			// the membership is in the catalogue, so it is not revoked.
			name: "unmanaged NOLOGIN role that is a member", check: connectors.CheckRevoked,
			setup: func(t *testing.T, u string) []string {
				f.createGroup(u, "IN ROLE "+qi(group))
				return nil
			},
			detail: []string{`role "ROLE" is still a member of "GROUP"`},
		},
		{
			// An entitlement is a direct membership; the route through the
			// other group is that group's entitlement, verified on its own.
			name: "membership through another group is not the entitlement", check: connectors.CheckRevoked,
			setup: func(t *testing.T, u string) []string {
				ensure(t, u, false)
				f.createGroup(u+"_via", "IN ROLE "+qi(group)+" ROLE "+qi(u))
				return nil
			},
			want:   true,
			detail: []string{`role "ROLE" is not a member of "GROUP"`},
		},
		{
			name: "existing account is not deleted", check: connectors.CheckDeleted,
			setup:  func(t *testing.T, u string) []string { ensure(t, u, false); return nil },
			detail: []string{`role "ROLE" still exists (LOGIN)`},
		},
		{
			name: "account deleted by the connector", check: connectors.CheckDeleted,
			setup: func(t *testing.T, u string) []string {
				ensure(t, u, false)
				_, err := c.DeleteAccount(testenv.Context(t), connectors.AccountRequest{Username: u})
				require.NoError(t, err)
				return nil
			},
			want:   true,
			detail: []string{`role "ROLE" does not exist`},
		},
		{
			// Stricter than GetAccount, which calls this NotFound.
			name: "role recreated by hand under the name is not deleted", check: connectors.CheckDeleted,
			setup: func(t *testing.T, u string) []string {
				ensure(t, u, false)
				_, err := c.DeleteAccount(testenv.Context(t), connectors.AccountRequest{Username: u})
				require.NoError(t, err)
				f.createGroup(u, "")
				return nil
			},
			detail: []string{`role "ROLE" still exists (NOLOGIN, not managed by provisio)`},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := p + "v" + strconv.Itoa(i)
			extra := tt.setup(t, u)
			req := connectors.VerifyRequest{Username: u, Check: tt.check}
			if tt.check == connectors.CheckRevoked {
				req.Entitlement = group
			}
			v, err := c.Verify(testenv.Context(t), req)
			require.NoError(t, err)
			assert.Equal(t, tt.want, v.Verified, v.Detail)
			names := strings.NewReplacer("ROLE", u, "GROUP", group)
			for _, want := range append(tt.detail, extra...) {
				assert.Contains(t, v.Detail, names.Replace(want))
			}
			for _, no := range tt.absent {
				assert.NotContains(t, v.Detail, no)
			}
		})
	}
}

// TestVerifySessionSurvivingNologin is the case read-back exists for: a
// role made NOLOGIN by hand, without ending its sessions, reads as
// disabled, yet its sessions (here in two databases) still work. Verify
// says so, naming them; the connector's own disable ends them and then
// verifies.
func TestVerifySessionSurvivingNologin(t *testing.T) {
	f := newFixture(t)
	c := f.client
	ctx := testenv.Context(t)
	u := f.prefix + "survivor"
	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: account(u)})
	require.NoError(t, err)

	var b [6]byte
	_, _ = rand.Read(b[:])
	db := "provisio_test_" + hex.EncodeToString(b[:])
	f.exec("CREATE DATABASE " + qi(db))
	t.Cleanup(func() {
		_, _ = f.admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+qi(db)+" WITH (FORCE)")
	})
	here, err := f.login(ctx, u)
	require.NoError(t, err)
	defer here.Close(context.Background())
	cfg, err := pgx.ParseConfig(f.url)
	require.NoError(t, err)
	cfg.User, cfg.Password, cfg.Database = u, "", db
	there, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer there.Close(context.Background())
	sessions := []*pgx.Conn{here, there}

	f.exec("ALTER ROLE " + qi(u) + " NOLOGIN")
	require.Error(t, f.loginOnce(ctx, u), "new logins are refused")
	for _, s := range sessions {
		_, err := s.Exec(ctx, "SELECT 1")
		require.NoError(t, err, "but the sessions opened before still work")
	}

	req := connectors.VerifyRequest{Username: u, Check: connectors.CheckDisabled}
	byReading, err := connectors.VerifyByReading(ctx, c, req)
	require.NoError(t, err)
	assert.True(t, byReading.Verified, "reading the account alone is fooled: %s", byReading.Detail)

	v, err := c.Verify(ctx, req)
	require.NoError(t, err)
	assert.False(t, v.Verified, v.Detail)
	lo, hi := min(here.PgConn().PID(), there.PgConn().PID()), max(here.PgConn().PID(), there.PgConn().PID())
	assert.Equal(t, "2 sessions of the role are still open (pids "+
		strconv.FormatUint(uint64(lo), 10)+", "+strconv.FormatUint(uint64(hi), 10)+")", v.Detail)

	d, err := c.DisableAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.False(t, d.Changed, "the role was already NOLOGIN")
	assert.Equal(t, 2, d.SessionsEnded)
	for _, s := range sessions {
		_, err := s.Exec(ctx, "SELECT 1")
		assert.Error(t, err, "the session is dead")
	}

	v, err = c.Verify(ctx, req)
	require.NoError(t, err)
	assert.True(t, v.Verified, v.Detail)
	assert.Equal(t, `role "`+u+`" cannot log in and has no open session`, v.Detail)
}

// TestVerifyManySessionsDetail checks that a detail names a bounded number
// of pids however many sessions are open.
func TestVerifyManySessionsDetail(t *testing.T) {
	pids := make([]int32, 13)
	for i := range pids {
		pids[i] = int32(100 + i)
	}
	assert.Equal(t, "13 sessions of the role are still open (pids 100, 101, 102, 103, 104, 105, 106, 107, 108, 109 and 3 more)",
		sessionsOpen(pids))
	assert.Equal(t, "1 session of the role is still open (pid 7)", sessionsOpen([]int32{7}))
}

// TestVerifyRolePrefix checks that Verify reads the prefixed role and names
// it, as an operator would look for it in psql.
func TestVerifyRolePrefix(t *testing.T) {
	f := newFixture(t)
	ctx := testenv.Context(t)
	rolePrefix := f.prefix + "_u_"
	pc, err := New(ctx, Config{URL: f.url, RolePrefix: rolePrefix})
	require.NoError(t, err)
	defer pc.Close()
	_, err = pc.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: account("ada")})
	require.NoError(t, err)

	v, err := pc.Verify(ctx, connectors.VerifyRequest{Username: "ada", Check: connectors.CheckDeleted})
	require.NoError(t, err)
	assert.False(t, v.Verified)
	assert.Equal(t, `role "`+rolePrefix+`ada" still exists (LOGIN)`, v.Detail)

	// The unprefixed client looks for another role, which does not exist.
	v, err = f.client.Verify(ctx, connectors.VerifyRequest{Username: rolePrefix[:len(rolePrefix)-1], Check: connectors.CheckDeleted})
	require.NoError(t, err)
	assert.True(t, v.Verified, v.Detail)
}

// TestVerifyRefusesBadRequests checks that requests the connector would
// refuse to act on are refused before any read, with the kind the other
// operations give.
func TestVerifyRefusesBadRequests(t *testing.T) {
	f := newFixture(t)
	ctx := testenv.Context(t)
	u := f.prefix + "u"
	tests := []struct {
		name string
		req  connectors.VerifyRequest
		want connectors.ErrorKind
	}{
		{"unknown check", connectors.VerifyRequest{Username: u, Check: "locked"}, connectors.KindInvalid},
		{"empty username", connectors.VerifyRequest{Check: connectors.CheckDeleted}, connectors.KindInvalid},
		{"revoked without entitlement", connectors.VerifyRequest{Username: u, Check: connectors.CheckRevoked}, connectors.KindInvalid},
		{"entitlement on a disabled check", connectors.VerifyRequest{Username: u, Check: connectors.CheckDisabled, Entitlement: "x"}, connectors.KindInvalid},
		// PostgreSQL would truncate the name to 63 bytes and read another role.
		{"username too long", connectors.VerifyRequest{Username: strings.Repeat("a", 64), Check: connectors.CheckDeleted}, connectors.KindInvalid},
		{"reserved username", connectors.VerifyRequest{Username: "public", Check: connectors.CheckDisabled}, connectors.KindInvalid},
		{"predefined role as entitlement", connectors.VerifyRequest{Username: u, Check: connectors.CheckRevoked, Entitlement: "pg_read_all_data"}, connectors.KindPermission},
		{"entitlement too long", connectors.VerifyRequest{Username: u, Check: connectors.CheckRevoked, Entitlement: strings.Repeat("g", 64)}, connectors.KindInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.client.Verify(ctx, tt.req)
			require.Error(t, err)
			assert.Equal(t, tt.want, connectors.KindOf(err), "%v", err)
		})
	}
}
