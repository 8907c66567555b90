package ldap

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/testenv"
)

// These tests live inside the package to reach the Active Directory
// parser, for which there is no server here; the rest run against the
// test slapd like the package's other tests.

func TestADBindReason(t *testing.T) {
	tests := []struct{ diag, want string }{
		{"80090308: LdapErr: DSID-0C09042F, comment: AcceptSecurityContext error, data 533, v4563", "533"},
		{"80090308: LdapErr: DSID-0C090400, comment: AcceptSecurityContext error, data 775, v1db1", "775"},
		{"80090308: LdapErr: DSID-0C09030B, comment: AcceptSecurityContext error, data 52e, v893", "52e"},
		{"80090308: LdapErr: DSID-0C09030B, comment: AcceptSecurityContext error, DATA 52E, v893", "52e"},
		{"AcceptSecurityContext error, data 533", "533"},
		{"", ""},
		{"invalid credentials", ""},
		{"metadata 533, v1", ""},
		{"data xyz, v1", ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, adBindReason(tt.diag), "%q", tt.diag)
	}
}

func TestADVerdict(t *testing.T) {
	const lock = "userAccountControl 514 has ACCOUNTDISABLE (0x2)"
	tests := []struct {
		diag       string
		want       bool
		wantDetail string
	}{
		{"AcceptSecurityContext error, data 533, v4563", true, "data 533, account disabled"},
		{"AcceptSecurityContext error, data 775, v1db1", true, "data 775, account locked out"},
		{"AcceptSecurityContext error, data 52e, v893", false, "set SkipVerifyBind"},
		{"AcceptSecurityContext error, data 530, v893", false, "data 530, not permitted to log on at this time"},
		{"AcceptSecurityContext error, data 9999, v893", false, "an unknown reason"},
		{"Invalid Credentials", false, "without saying why"},
	}
	for _, tt := range tests {
		v := adVerdict("alice", lock, tt.diag)
		assert.Equal(t, tt.want, v.Verified, "%q: %s", tt.diag, v.Detail)
		assert.Contains(t, v.Detail, tt.wantDetail, "%q", tt.diag)
		assert.Contains(t, v.Detail, `"alice"`, "the detail names the account")
	}
}

// verifyEnv is a connector for the test slapd, an admin connection for
// changes behind its back, a group and a run-unique prefix.
type verifyEnv struct {
	ctx    context.Context
	c      *Client
	admin  *goldap.Conn
	prefix string
	group  string
	base   string
	cfg    Config
}

func newVerifyEnv(t *testing.T, tweak func(*Config)) *verifyEnv {
	t.Helper()
	env := func(key, def string) string {
		if v := os.Getenv(key); v != "" {
			return v
		}
		return def
	}
	base := env("LDAP_BASE_DN", "dc=example,dc=com")
	cfg := Config{
		URL:            env("LDAP_URL", "ldap://127.0.0.1:3389"),
		BindDN:         env("LDAP_BIND_DN", "cn=admin,dc=example,dc=com"),
		BindPassword:   env("LDAP_BIND_PASSWORD", "admin"),
		PeopleDN:       "ou=people," + base,
		GroupsDN:       "ou=groups," + base,
		RequestTimeout: 20 * time.Second,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	e := &verifyEnv{ctx: testenv.Context(t), prefix: testenv.RandomLetters(8), base: base, cfg: cfg}
	var err error
	e.c, err = New(e.ctx, cfg)
	if err != nil {
		t.Fatalf("LDAP server at %s: %v: run `make stack` (or deployments/slapd/slapd.sh start)", cfg.URL, err)
	}
	t.Cleanup(func() { _ = e.c.Close() })
	e.admin, err = goldap.DialURL(cfg.URL, goldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.admin.Close() })
	e.admin.SetTimeout(20 * time.Second)
	require.NoError(t, e.admin.Bind(cfg.BindDN, cfg.BindPassword))

	e.group = e.prefix + "grp"
	add := goldap.NewAddRequest(e.groupDN(), nil)
	add.Attribute("objectClass", []string{"top", "groupOfNames"})
	add.Attribute("cn", []string{e.group})
	add.Attribute("member", []string{DefaultPlaceholderMember})
	require.NoError(t, e.admin.Add(add))
	t.Cleanup(func() { e.del(t, e.groupDN()) })
	return e
}

func (e *verifyEnv) userDN(u string) string {
	return "uid=" + goldap.EscapeDN(u) + "," + e.cfg.PeopleDN
}
func (e *verifyEnv) groupDN() string { return "cn=" + goldap.EscapeDN(e.group) + "," + e.cfg.GroupsDN }

func (e *verifyEnv) del(t *testing.T, dn string) {
	if err := e.admin.Del(goldap.NewDelRequest(dn, nil)); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		t.Logf("cleanup of %s: %v", dn, err)
	}
}

// account creates username, enabled and granted the env's group, and
// deletes it when the test ends.
func (e *verifyEnv) account(t *testing.T, username string) {
	t.Helper()
	_, err := e.c.EnsureAccount(e.ctx, connectors.EnsureAccountRequest{Account: connectors.Account{
		Username: username, EmployeeID: "E1", GivenName: "Ada", FamilyName: "Lovelace",
	}})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := e.c.DeleteAccount(ctx, connectors.AccountRequest{Username: username}); err != nil {
			t.Logf("cleanup of %q: %v", username, err)
		}
	})
	_, err = e.c.GrantEntitlement(e.ctx, connectors.EntitlementRequest{Username: username, Entitlement: e.group})
	require.NoError(t, err)
}

// modify applies one change to dn as the admin, behind the connector's
// back.
func (e *verifyEnv) modify(t *testing.T, dn string, change func(*goldap.ModifyRequest)) {
	t.Helper()
	mod := goldap.NewModifyRequest(dn, nil)
	change(mod)
	require.NoError(t, e.admin.Modify(mod))
}

// lenientPolicy adds a password policy with pwdLockout FALSE, under which
// ppolicy ignores pwdAccountLockedTime, and returns its DN: an account
// pointing at it carries the connector's lock without the directory
// enforcing it.
func (e *verifyEnv) lenientPolicy(t *testing.T) string {
	t.Helper()
	dn := "cn=" + e.prefix + "nolockout,ou=policies," + e.base
	add := goldap.NewAddRequest(dn, nil)
	add.Attribute("objectClass", []string{"top", "device", "pwdPolicy"})
	add.Attribute("cn", []string{e.prefix + "nolockout"})
	add.Attribute("pwdAttribute", []string{"userPassword"})
	add.Attribute("pwdLockout", []string{"FALSE"})
	require.NoError(t, e.admin.Add(add))
	t.Cleanup(func() { e.del(t, dn) })
	return dn
}

// TestVerify walks each check through states the connector produced and
// states changed behind its back, and checks the verdict and that the
// detail says what was found.
func TestVerify(t *testing.T) {
	e := newVerifyEnv(t, nil)
	policy := e.lenientPolicy(t)
	disable := func(t *testing.T, u string) {
		_, err := e.c.DisableAccount(e.ctx, connectors.AccountRequest{Username: u})
		require.NoError(t, err)
	}
	tests := []struct {
		name       string
		check      connectors.Check
		entitle    string // overrides the env's group for CheckRevoked
		setup      func(t *testing.T, u string)
		want       bool
		wantDetail string
	}{
		{
			name: "disabled by DisableAccount", check: connectors.CheckDisabled,
			setup: disable, want: true, wantDetail: "ppolicy answers accountLocked",
		},
		{
			name: "enabled", check: connectors.CheckDisabled,
			want: false, wantDetail: "is not disabled: pwdAccountLockedTime is absent",
		},
		{
			name: "lock removed behind the connector's back", check: connectors.CheckDisabled,
			setup: func(t *testing.T, u string) {
				disable(t, u)
				e.modify(t, e.userDN(u), func(m *goldap.ModifyRequest) { m.Delete("pwdAccountLockedTime", nil) })
			},
			want: false, wantDetail: "pwdAccountLockedTime is absent",
		},
		{
			name: "temporary lockout instead of the permanent lock", check: connectors.CheckDisabled,
			setup: func(t *testing.T, u string) {
				e.modify(t, e.userDN(u), func(m *goldap.ModifyRequest) { m.Replace("pwdAccountLockedTime", []string{"20200101000000Z"}) })
			},
			want: false, wantDetail: "a lockout that may expire",
		},
		{
			name: "lock set but not enforced by the account's policy", check: connectors.CheckDisabled,
			setup: func(t *testing.T, u string) {
				e.modify(t, e.userDN(u), func(m *goldap.ModifyRequest) { m.Replace("pwdPolicySubentry", []string{policy}) })
				disable(t, u)
			},
			want: false, wantDetail: "does not refuse binds as locked: is the ppolicy overlay loaded with ppolicy_use_lockout",
		},
		{
			name: "account gone is not disabled", check: connectors.CheckDisabled,
			setup: func(t *testing.T, u string) { e.del(t, e.userDN(u)) },
			want:  false, wantDetail: "does not exist",
		},
		{
			name: "member", check: connectors.CheckRevoked,
			want: false, wantDetail: "still holds",
		},
		{
			name: "revoked by RevokeEntitlement", check: connectors.CheckRevoked,
			setup: func(t *testing.T, u string) {
				_, err := e.c.RevokeEntitlement(e.ctx, connectors.EntitlementRequest{Username: u, Entitlement: e.group})
				require.NoError(t, err)
			},
			want: true, wantDetail: "does not list its DN as a member",
		},
		{
			name: "member value added back behind the connector's back", check: connectors.CheckRevoked,
			setup: func(t *testing.T, u string) {
				_, err := e.c.RevokeEntitlement(e.ctx, connectors.EntitlementRequest{Username: u, Entitlement: e.group})
				require.NoError(t, err)
				e.modify(t, e.groupDN(), func(m *goldap.ModifyRequest) { m.Add("member", []string{e.userDN(u)}) })
			},
			want: false, wantDetail: "still holds",
		},
		{
			name: "entitlement that does not exist", check: connectors.CheckRevoked, entitle: "nosuchgroup-" + e.prefix,
			want: true, wantDetail: "no groupOfNames with that cn",
		},
		{
			name: "account deleted behind the back, member value left", check: connectors.CheckRevoked,
			setup: func(t *testing.T, u string) { e.del(t, e.userDN(u)) },
			want:  false, wantDetail: "revoke again to remove the leftover value",
		},
		{
			name: "existing account", check: connectors.CheckDeleted,
			want: false, wantDetail: "still exists",
		},
		{
			name: "deleted by DeleteAccount", check: connectors.CheckDeleted,
			setup: func(t *testing.T, u string) {
				_, err := e.c.DeleteAccount(e.ctx, connectors.AccountRequest{Username: u})
				require.NoError(t, err)
			},
			want: true, wantDetail: "does not exist and no group",
		},
		{
			name: "entry deleted behind the back, membership left", check: connectors.CheckDeleted,
			setup: func(t *testing.T, u string) { e.del(t, e.userDN(u)) },
			want:  false, wantDetail: "groups " + e.group + " still list its DN",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := e.prefix + "v" + string(rune('a'+i))
			e.account(t, u)
			if tt.setup != nil {
				tt.setup(t, u)
			}
			req := connectors.VerifyRequest{Username: u, Check: tt.check}
			if tt.check == connectors.CheckRevoked {
				req.Entitlement = e.group
				if tt.entitle != "" {
					req.Entitlement = tt.entitle
				}
			}
			v, err := e.c.Verify(e.ctx, req)
			require.NoError(t, err)
			t.Log(v.Detail)
			assert.Equal(t, tt.want, v.Verified, v.Detail)
			assert.Contains(t, v.Detail, tt.wantDetail)
		})
	}
}

// TestVerifyUnenforcedLockReallyLetsTheUserIn backs the "not verified" of an
// account whose lock its password policy ignores: with a password set, the
// account binds although DisableAccount locked it. SkipVerifyBind trusts
// the attribute and so, as documented, calls it disabled.
func TestVerifyUnenforcedLockReallyLetsTheUserIn(t *testing.T) {
	e := newVerifyEnv(t, nil)
	u := e.prefix + "lenient"
	e.account(t, u)
	e.modify(t, e.userDN(u), func(m *goldap.ModifyRequest) {
		m.Replace("pwdPolicySubentry", []string{e.lenientPolicy(t)})
		m.Replace("userPassword", []string{"pw-" + e.prefix})
	})
	_, err := e.c.DisableAccount(e.ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)

	v, err := e.c.Verify(e.ctx, connectors.VerifyRequest{Username: u, Check: connectors.CheckDisabled})
	require.NoError(t, err)
	assert.False(t, v.Verified, v.Detail)

	user, err := goldap.DialURL(e.cfg.URL)
	require.NoError(t, err)
	defer user.Close()
	assert.NoError(t, user.Bind(e.userDN(u), "pw-"+e.prefix), "the lock is really not enforced")

	skip := newVerifyEnv(t, func(c *Config) { c.SkipVerifyBind = true })
	v, err = skip.c.Verify(e.ctx, connectors.VerifyRequest{Username: u, Check: connectors.CheckDisabled})
	require.NoError(t, err)
	assert.True(t, v.Verified, v.Detail)
	assert.Contains(t, v.Detail, "no bind was tried")
}

// TestVerifyBindLeavesEntryUnchanged shows that the bind Verify makes as a
// locked account (a wrong password, by design) records nothing: no
// pwdFailureTime, no new entryCSN. A directory that counted it could lock
// the account or fill its failure history.
func TestVerifyBindLeavesEntryUnchanged(t *testing.T) {
	e := newVerifyEnv(t, nil)
	u := e.prefix + "quiet"
	e.account(t, u)
	_, err := e.c.DisableAccount(e.ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	read := func() *goldap.Entry {
		res, err := e.admin.Search(goldap.NewSearchRequest(e.userDN(u), goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"*", "+"}, nil))
		require.NoError(t, err)
		require.Len(t, res.Entries, 1)
		return res.Entries[0]
	}
	before := read()
	for range 3 {
		v, err := e.c.Verify(e.ctx, connectors.VerifyRequest{Username: u, Check: connectors.CheckDisabled})
		require.NoError(t, err)
		require.True(t, v.Verified, v.Detail)
	}
	after := read()
	assert.Empty(t, after.GetAttributeValues("pwdFailureTime"), "a refused bind of a locked account records no failure")
	assert.Equal(t, before.GetAttributeValue("entryCSN"), after.GetAttributeValue("entryCSN"), "the entry is not modified")
}

// TestVerifyErrors: a bad request is Invalid and never reaches the
// directory; an ended context is a retryable error, never a verdict.
func TestVerifyErrors(t *testing.T) {
	e := newVerifyEnv(t, nil)
	u := e.prefix + "err"
	e.account(t, u)
	_, err := e.c.Verify(e.ctx, connectors.VerifyRequest{Username: u, Check: connectors.CheckRevoked, Entitlement: "bad\x00name"})
	assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err), "%v", err)

	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	for _, check := range []connectors.Check{connectors.CheckDisabled, connectors.CheckRevoked, connectors.CheckDeleted} {
		req := connectors.VerifyRequest{Username: u, Check: check}
		if check == connectors.CheckRevoked {
			req.Entitlement = e.group
		}
		_, err := e.c.Verify(ctx, req)
		require.Error(t, err, check)
		assert.True(t, connectors.KindOf(err).Retryable(), "%s: %v", check, err)
	}
}
