package ldap_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/connectors/conformance"
	"github.com/provisio-dev/provisio/connectors/ldap"
	"github.com/provisio-dev/provisio/internal/testenv"
)

func TestConformance(t *testing.T) {
	admin := adminConn(t)
	prefix := testenv.RandomLetters(8)
	groups := []string{prefix + "grpa", prefix + "grpb"}
	for _, g := range groups {
		createGroup(t, admin, g)
	}
	conformance.Run(t, conformance.Harness{
		Connector:    newClient(t, testConfig()),
		Prefix:       prefix,
		Entitlements: groups,
		Login:        login(admin),
	})
}

// account returns a valid account for username.
func account(username string) connectors.Account {
	return connectors.Account{
		Username: username, EmployeeID: "E1", GivenName: "Grace", FamilyName: "Hopper",
		DisplayName: "Grace Hopper", Email: "grace@example.com",
	}
}

// ensure creates username and deletes it when the test ends.
func ensure(t *testing.T, c *ldap.Client, username string, disabled bool) {
	t.Helper()
	_, err := c.EnsureAccount(testenv.Context(t), connectors.EnsureAccountRequest{Account: account(username), Disabled: disabled})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := c.DeleteAccount(ctx, connectors.AccountRequest{Username: username}); err != nil {
			t.Logf("cleanup of %q: %v", username, err)
		}
	})
}

func TestBindFailsAfterDisable(t *testing.T) {
	ctx, c, admin := testenv.Context(t), newClient(t, testConfig()), adminConn(t)
	u := testenv.RandomLetters(8) + "bind"
	ensure(t, c, u, false)
	bind := login(admin)

	require.NoError(t, bind(ctx, u), "enabled account binds")
	d, err := c.DisableAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.True(t, d.Changed)
	assert.Zero(t, d.SessionsEnded, "LDAP has no sessions to end")

	err = bind(ctx, u)
	require.ErrorIs(t, err, conformance.ErrLoginFailed, "a disabled account must not bind")
	assert.True(t, goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials), "ppolicy refuses the bind: %v", err)

	res, err := admin.Search(goldap.NewSearchRequest(userDN(u), goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"pwdAccountLockedTime"}, nil))
	require.NoError(t, err)
	assert.Equal(t, "000001010000Z", res.Entries[0].GetAttributeValue("pwdAccountLockedTime"))

	_, err = c.EnableAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	require.NoError(t, bind(ctx, u), "re-enabled account binds again")

	// Created disabled: locked from the first moment.
	v := testenv.RandomLetters(8) + "bindnew"
	ensure(t, c, v, true)
	assert.ErrorIs(t, bind(ctx, v), conformance.ErrLoginFailed, "an account created disabled must not bind")
}

// TestHostileUsernamesNameExactlyOneEntryUnderPeople proves that DN
// metacharacters stay inside the uid value: each account is one entry
// directly under PeopleDN whose uid is the username, and nothing appears
// anywhere else.
func TestHostileUsernamesNameExactlyOneEntryUnderPeople(t *testing.T) {
	ctx, c, admin := testenv.Context(t), newClient(t, testConfig()), adminConn(t)
	prefix := testenv.RandomLetters(8)
	tests := []struct{ name, username, wantDN string }{
		{"comma adds no RDN", prefix + "x,ou=groups", `uid=` + prefix + `x\,ou=groups,` + peopleDN},
		{"plus adds no attribute", prefix + "x+cn=admin", `uid=` + prefix + `x\+cn=admin,` + peopleDN},
		{"semicolon", prefix + "x;ou=groups", `uid=` + prefix + `x\;ou=groups,` + peopleDN},
		{"backslash", prefix + `x\`, `uid=` + prefix + `x\\,` + peopleDN},
		{"quote and angles", prefix + `x"<>`, `uid=` + prefix + `x\"\<\>,` + peopleDN},
		{"equals", prefix + "x=y", `uid=` + prefix + `x=y,` + peopleDN},
		{"leading hash", "#" + prefix, `uid=\#` + prefix + `,` + peopleDN},
		{"trailing space", prefix + "x ", `uid=` + prefix + `x\ ,` + peopleDN},
		{"leading space", " " + prefix, `uid=\ ` + prefix + `,` + peopleDN},
		{"inner spaces", prefix + "a  b", `uid=` + prefix + `a  b,` + peopleDN},
		{"filter metacharacters", prefix + "*)(uid=*", `uid=` + prefix + `*)(uid=*,` + peopleDN},
		{"non-ASCII", prefix + "josé", `uid=` + prefix + `josé,` + peopleDN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.wantDN, userDN(tt.username), "test table agrees with RFC 4514")
			ensure(t, c, tt.username, false)

			// Exactly one entry in the whole tree carries this uid...
			res, err := admin.Search(goldap.NewSearchRequest(baseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
				"(uid="+goldap.EscapeFilter(tt.username)+")", []string{"uid"}, nil))
			require.NoError(t, err)
			require.Len(t, res.Entries, 1)
			// ...it is the intended DN, directly under PeopleDN...
			got, err := goldap.ParseDN(res.Entries[0].DN)
			require.NoError(t, err)
			want, err := goldap.ParseDN(tt.wantDN)
			require.NoError(t, err)
			assert.True(t, got.Equal(want), "entry %s, want %s", res.Entries[0].DN, tt.wantDN)
			require.Len(t, got.RDNs[0].Attributes, 1, "single-valued RDN")
			assert.Equal(t, tt.username, got.RDNs[0].Attributes[0].Value)
			assert.Equal(t, []string{tt.username}, res.Entries[0].GetAttributeValues("uid"))

			// ...and reads back exactly.
			acct, err := c.GetAccount(ctx, connectors.AccountRequest{Username: tt.username})
			require.NoError(t, err)
			assert.Equal(t, tt.username, acct.Username)
		})
	}
	// Nothing with a uid appeared under the groups.
	res, err := admin.Search(goldap.NewSearchRequest(groupsDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(uid=*)", []string{"1.1"}, nil))
	require.NoError(t, err)
	assert.Empty(t, res.Entries, "no account may land under %s", groupsDN)
}

// TestFilterInjectionMatchesNothingExtra proves that filter metacharacters
// in usernames and group names match only themselves.
func TestFilterInjectionMatchesNothingExtra(t *testing.T) {
	ctx, c, admin := testenv.Context(t), newClient(t, testConfig()), adminConn(t)
	prefix := testenv.RandomLetters(8)
	alice, bob := prefix+"alice", prefix+"bob"
	ensure(t, c, alice, false)
	ensure(t, c, bob, false)
	createGroup(t, admin, prefix+"staff")
	_, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: alice, Entitlement: prefix + "staff"})
	require.NoError(t, err)

	for _, u := range []string{prefix + "*", "*", "*)(uid=*", prefix + "*)(|(uid=*", prefix + `\2a`} {
		_, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u})
		assert.True(t, connectors.IsNotFound(err), "GetAccount(%q) must match nothing: %v", u, err)
		d, err := c.DeleteAccount(ctx, connectors.AccountRequest{Username: u})
		require.NoError(t, err)
		assert.False(t, d.Deleted, "DeleteAccount(%q) must delete nothing", u)
		_, err = c.DisableAccount(ctx, connectors.AccountRequest{Username: u})
		assert.True(t, connectors.IsNotFound(err), "DisableAccount(%q): %v", u, err)
	}
	for _, g := range []string{"*", prefix + "*", "*)(cn=*", prefix + "staff)(cn=*"} {
		_, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: bob, Entitlement: g})
		require.Error(t, err, "group %q must match no group", g)
		assert.Equal(t, connectors.KindNotFound, connectors.KindOf(err), "%v", err)
		_, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: alice, Entitlement: g})
		assert.Equal(t, connectors.KindNotFound, connectors.KindOf(err), "%v", err)
	}
	// Both accounts and alice's membership survived.
	for _, u := range []string{alice, bob} {
		_, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u})
		require.NoError(t, err, "%s survived", u)
	}
	a, err := c.GetAccount(ctx, connectors.AccountRequest{Username: alice})
	require.NoError(t, err)
	assert.Equal(t, []string{prefix + "staff"}, a.Entitlements)
	// An account named like an injection is created, found and deleted alone.
	evil := prefix + "*)(uid=*"
	ensure(t, c, evil, false)
	res, err := admin.Search(goldap.NewSearchRequest(peopleDN, goldap.ScopeSingleLevel, goldap.NeverDerefAliases, 0, 0, false,
		"(uid="+goldap.EscapeFilter(evil)+")", []string{"1.1"}, nil))
	require.NoError(t, err)
	assert.Len(t, res.Entries, 1, "the escaped filter matches the one account")
	d, err := c.DeleteAccount(ctx, connectors.AccountRequest{Username: evil})
	require.NoError(t, err)
	assert.True(t, d.Deleted)
	for _, u := range []string{alice, bob} {
		_, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u})
		require.NoError(t, err, "deleting %q must not delete %s", evil, u)
	}
}

func TestInvalidNamesAreRefused(t *testing.T) {
	ctx, c := testenv.Context(t), newClient(t, testConfig())
	for _, u := range []string{"", strings.Repeat("a", 65), "x\x00y", "x\ny", "x\ty", "x\x7f", "x\xffy"} {
		t.Run(fmt.Sprintf("%q", u), func(t *testing.T) {
			_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: account(u)})
			assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err), "EnsureAccount: %v", err)
			_, err = c.GetAccount(ctx, connectors.AccountRequest{Username: u})
			assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err), "GetAccount: %v", err)
			_, err = c.DeleteAccount(ctx, connectors.AccountRequest{Username: u})
			assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err), "DeleteAccount: %v", err)
			_, err = c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: "someone", Entitlement: u})
			assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err), "GrantEntitlement: %v", err)
		})
	}
	acct := account(testenv.RandomLetters(8))
	acct.EmployeeID = ""
	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: acct})
	assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err), "employee ID is required: %v", err)
}

// TestLargeGroupGrantRevokeSendsOneValue proves that grant and revoke on a
// 5,000-member group send a single member value (a rewrite would send
// hundreds of kilobytes) and keep every other member.
func TestLargeGroupGrantRevokeSendsOneValue(t *testing.T) {
	ctx, admin := testenv.Context(t), adminConn(t)
	p := newProxy(t)
	cfg := testConfig()
	cfg.URL = p.url()
	c := newClient(t, cfg)
	prefix := testenv.RandomLetters(8)
	const n = 5000
	initial := make([]string, n)
	for i := range initial {
		initial[i] = userDN(fmt.Sprintf("%sm%05d", prefix, i))
	}
	group := prefix + "big"
	gdn := createGroup(t, admin, group, initial...)
	u := prefix + "joiner"
	ensure(t, c, u, false)

	p.reset()
	r, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: group})
	require.NoError(t, err)
	assert.True(t, r.Changed)
	assert.Less(t, p.up.Load(), int64(4096), "grant sent %d bytes: the member list was rewritten", p.up.Load())
	assert.Less(t, p.down.Load(), int64(4096), "grant read %d bytes: the member list was fetched", p.down.Load())
	got := members(t, admin, gdn)
	assert.Len(t, got, n+1)
	assert.Contains(t, got, userDN(u))

	// A member added out of band meanwhile must survive the revoke.
	other := userDN(prefix + "concurrent")
	mod := goldap.NewModifyRequest(gdn, nil)
	mod.Add("member", []string{other})
	require.NoError(t, admin.Modify(mod))

	acct, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.Equal(t, []string{group}, acct.Entitlements)

	p.reset()
	r, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: group})
	require.NoError(t, err)
	assert.True(t, r.Changed)
	assert.Less(t, p.up.Load(), int64(4096), "revoke sent %d bytes: the member list was rewritten", p.up.Load())
	got = members(t, admin, gdn)
	assert.Len(t, got, n+1)
	assert.NotContains(t, got, userDN(u))
	assert.Contains(t, got, other)
	assert.Equal(t, initial, got[:n], "every original member kept, in order")

	r, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: group})
	require.NoError(t, err)
	assert.False(t, r.Changed)
}

func TestRevokingLastMemberKeepsGroupValid(t *testing.T) {
	ctx, c, admin := testenv.Context(t), newClient(t, testConfig()), adminConn(t)
	prefix := testenv.RandomLetters(8)
	u := prefix + "solo"
	ensure(t, c, u, false)
	group := prefix + "solo"
	gdn := createGroup(t, admin, group, userDN(u))

	r, err := c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: group})
	require.NoError(t, err)
	assert.True(t, r.Changed)
	assert.Equal(t, []string{ldap.DefaultPlaceholderMember}, members(t, admin, gdn), "placeholder keeps the group valid")

	r, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: group})
	require.NoError(t, err)
	assert.False(t, r.Changed)

	_, err = c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: group})
	require.NoError(t, err)
	acct, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.Equal(t, []string{group}, acct.Entitlements, "the placeholder is not an entitlement")
}

func TestDeleteRemovesEveryMembership(t *testing.T) {
	ctx, c, admin := testenv.Context(t), newClient(t, testConfig()), adminConn(t)
	prefix := testenv.RandomLetters(8)
	u, keep := prefix+"leaver", prefix+"stayer"
	ensure(t, c, u, false)
	ensure(t, c, keep, false)
	shared := createGroup(t, admin, prefix+"shared", userDN(keep))
	only := createGroup(t, admin, prefix+"only", userDN(u))
	_, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: prefix + "shared"})
	require.NoError(t, err)

	d, err := c.DeleteAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.True(t, d.Deleted)
	assert.Equal(t, []string{userDN(keep)}, members(t, admin, shared))
	assert.Equal(t, []string{ldap.DefaultPlaceholderMember}, members(t, admin, only))

	// A leftover member value of an account deleted out of band is cleaned.
	mod := goldap.NewModifyRequest(shared, nil)
	mod.Add("member", []string{userDN(u)})
	require.NoError(t, admin.Modify(mod))
	d, err = c.DeleteAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.False(t, d.Deleted)
	assert.Equal(t, []string{userDN(keep)}, members(t, admin, shared))
}

// TestCaseVariantIsConflict: LDAP matches uid case-insensitively, so another
// spelling must never reach the existing account.
func TestCaseVariantIsConflict(t *testing.T) {
	ctx, c, admin := testenv.Context(t), newClient(t, testConfig()), adminConn(t)
	prefix := testenv.RandomLetters(8)
	u := prefix + "case"
	ensure(t, c, u, false)
	createGroup(t, admin, prefix+"grp", userDN(u))
	variant := strings.ToUpper(u)

	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: account(variant)})
	assert.Equal(t, connectors.KindConflict, connectors.KindOf(err), "EnsureAccount: %v", err)
	_, err = c.DeleteAccount(ctx, connectors.AccountRequest{Username: variant})
	assert.Equal(t, connectors.KindConflict, connectors.KindOf(err), "DeleteAccount: %v", err)
	_, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: variant, Entitlement: prefix + "grp"})
	assert.Equal(t, connectors.KindConflict, connectors.KindOf(err), "RevokeEntitlement: %v", err)
	_, err = c.DisableAccount(ctx, connectors.AccountRequest{Username: variant})
	assert.Equal(t, connectors.KindConflict, connectors.KindOf(err), "DisableAccount: %v", err)

	acct, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.False(t, acct.Disabled)
	assert.Equal(t, []string{prefix + "grp"}, acct.Entitlements)

	// Insignificant spaces are the same kind of alias.
	spaced := prefix + "a b"
	ensure(t, c, spaced, false)
	for _, alias := range []string{prefix + "a  b", " " + prefix + "a b", prefix + "a b "} {
		_, err := c.GetAccount(ctx, connectors.AccountRequest{Username: alias})
		assert.Equal(t, connectors.KindConflict, connectors.KindOf(err), "GetAccount(%q): %v", alias, err)
	}
}

// TestPageTokenIsStateless continues a listing on another client (another
// connection, as after a worker restart) and refuses forged tokens.
func TestPageTokenIsStateless(t *testing.T) {
	ctx := testenv.Context(t)
	c1, c2 := newClient(t, testConfig()), newClient(t, testConfig())
	prefix := testenv.RandomLetters(8)
	var want []string
	for i := range 5 {
		u := fmt.Sprintf("%sp%d", prefix, i)
		ensure(t, c1, u, false)
		want = append(want, u)
	}
	var got []string
	token := ""
	for i := 0; ; i++ {
		c := c1
		if i%2 == 1 {
			c = c2
		}
		resp, err := c.ListAccounts(ctx, connectors.ListAccountsRequest{PageSize: 2, PageToken: token})
		require.NoError(t, err)
		for _, a := range resp.Accounts {
			got = append(got, a.Username)
		}
		if resp.NextPageToken == "" {
			break
		}
		token = resp.NextPageToken
	}
	seen := map[string]bool{}
	var mine []string
	for _, u := range got {
		assert.False(t, seen[u], "%s listed twice", u)
		seen[u] = true
		if strings.HasPrefix(u, prefix) {
			mine = append(mine, u)
		}
	}
	assert.Equal(t, want, mine, "every account, in order")
	_, err := c1.ListAccounts(ctx, connectors.ListAccountsRequest{PageToken: "not-a-token"})
	assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err))
}

func TestReconnectsAfterDroppedConnection(t *testing.T) {
	ctx, p := testenv.Context(t), newProxy(t)
	cfg := testConfig()
	cfg.URL = p.url()
	cfg.PoolSize = 1
	c := newClient(t, cfg)
	u := testenv.RandomLetters(8) + "reconnect"
	ensure(t, c, u, false)

	p.dropAll()
	_, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err, "a dropped pooled connection is replaced transparently")
}

func TestUnreachableServerIsUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	cfg := testConfig()
	cfg.URL = "ldap://" + addr
	cfg.BindPassword = "do-not-print-me"
	_, err = ldap.New(testenv.Context(t), cfg)
	require.Error(t, err)
	assert.Equal(t, connectors.KindUnavailable, connectors.KindOf(err), "%v", err)
	assert.NotContains(t, err.Error(), cfg.BindPassword)
}

func TestStalledServerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	accepted := make(chan net.Conn, 16)
	t.Cleanup(func() {
		_ = ln.Close()
		close(accepted)
		for conn := range accepted {
			_ = conn.Close()
		}
	})
	go func() {
		for {
			conn, err := ln.Accept() // accept, never answer
			if err != nil {
				return
			}
			accepted <- conn
		}
	}()
	cfg := testConfig()
	cfg.URL = "ldap://" + ln.Addr().String()
	cfg.DialTimeout = 300 * time.Millisecond
	start := time.Now()
	_, err = ldap.New(testenv.Context(t), cfg)
	require.Error(t, err)
	assert.Equal(t, connectors.KindTimeout, connectors.KindOf(err), "%v", err)
	assert.Less(t, time.Since(start), 5*time.Second)
}

func TestWrongPasswordIsPermissionDenied(t *testing.T) {
	adminConn(t) // fails with the `make stack` hint when the server is down
	cfg := testConfig()
	cfg.BindPassword = "wrong-" + testenv.RandomLetters(10)
	_, err := ldap.New(testenv.Context(t), cfg)
	require.Error(t, err)
	assert.Equal(t, connectors.KindPermission, connectors.KindOf(err), "%v", err)
	assert.NotContains(t, err.Error(), cfg.BindPassword)
}

// TestListingCrossesServerPages lists more accounts than one Simple Paged
// Results batch (500) holds, in pages that do not line up with the batches.
func TestListingCrossesServerPages(t *testing.T) {
	ctx, c, admin := testenv.Context(t), newClient(t, testConfig()), adminConn(t)
	prefix := testenv.RandomLetters(8)
	const n = 1100
	want := map[string]bool{}
	for i := range n {
		u := fmt.Sprintf("%sbulk%04d", prefix, i)
		add := goldap.NewAddRequest(userDN(u), nil)
		add.Attribute("objectClass", []string{"inetOrgPerson"})
		add.Attribute("uid", []string{u})
		add.Attribute("cn", []string{u})
		add.Attribute("sn", []string{u})
		require.NoError(t, admin.Add(add))
		want[u] = true
	}
	t.Cleanup(func() {
		for u := range want {
			_ = admin.Del(goldap.NewDelRequest(userDN(u), nil))
		}
	})
	seen := map[string]int{}
	token, pages := "", 0
	for {
		resp, err := c.ListAccounts(ctx, connectors.ListAccountsRequest{PageSize: 300, PageToken: token})
		require.NoError(t, err)
		require.LessOrEqual(t, len(resp.Accounts), 300)
		for _, a := range resp.Accounts {
			seen[a.Username]++
		}
		pages++
		if resp.NextPageToken == "" {
			break
		}
		token = resp.NextPageToken
	}
	for u := range want {
		assert.Equal(t, 1, seen[u], "%s listed exactly once", u)
	}
	assert.GreaterOrEqual(t, pages, 4)
}
