package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
)

// Harness is what a connector's test gives the suite.
type Harness struct {
	// Connector is the connector under test, pointed at a real server.
	Connector connectors.Connector
	// Prefix starts every username the suite creates, so parallel runs and
	// leftovers of earlier runs never collide. Lowercase letters only.
	Prefix string
	// Entitlements are at least two entitlements that exist in the target
	// system and may be granted and revoked.
	Entitlements []string
	// Login authenticates as username using a credential the harness sets
	// out of band (never through the connector); nil means login succeeded.
	Login func(ctx context.Context, username string) error
}

// Run runs every conformance test against h.
func Run(t *testing.T, h Harness) {
	t.Helper()
	require.NotNil(t, h.Connector)
	require.GreaterOrEqual(t, len(h.Entitlements), 2, "harness needs two entitlements")
	require.NotEmpty(t, h.Prefix)
	s := &suite{h: h}
	t.Run("EnsureAccountIsIdempotent", s.ensureIdempotent)
	t.Run("EnsureAccountUpdatesAttributes", s.ensureUpdates)
	t.Run("EnsureAccountDisabledOnCreate", s.ensureDisabled)
	t.Run("GrantAndRevokeAreIdempotent", s.grantRevoke)
	t.Run("DisableBlocksLoginAndEnableRestores", s.disableBlocksLogin)
	t.Run("DeleteIsIdempotent", s.deleteIdempotent)
	t.Run("VerifyReadsRevocationsBack", s.verifyReadsBack)
	t.Run("GetMissingIsNotFound", s.getMissing)
	t.Run("ListPagesThroughEveryAccount", s.listPages)
	t.Run("HostileInputIsExactOrRefused", s.hostileInput)
}

type suite struct{ h Harness }

func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func (s *suite) name(t *testing.T, suffix string) string {
	return s.h.Prefix + suffix
}

func (s *suite) account(username string) connectors.Account {
	return connectors.Account{
		Username:    username,
		EmployeeID:  "E" + fmt.Sprint(len(username)*7919%1000000),
		GivenName:   "Ada",
		FamilyName:  "Lovelace",
		DisplayName: "Ada Lovelace",
		Email:       username + "@example.com",
	}
}

// cleanup deletes username when the test ends, whatever happened.
func (s *suite) cleanup(t *testing.T, username string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := s.h.Connector.DeleteAccount(ctx, connectors.AccountRequest{Username: username}); err != nil {
			t.Logf("cleanup of %q: %v", username, err)
		}
	})
}

func (s *suite) ensureIdempotent(t *testing.T) {
	ctx, c := s.ctx(t), s.h.Connector
	u := s.name(t, "idem")
	s.cleanup(t, u)
	acct := s.account(u)

	r1, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: acct})
	require.NoError(t, err)
	assert.True(t, r1.Created, "first ensure creates")

	r2, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: acct})
	require.NoError(t, err)
	assert.False(t, r2.Created, "second ensure must not create")
	assert.False(t, r2.Updated, "second ensure must not update")

	got, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.Equal(t, u, got.Username)
	assert.Equal(t, acct.EmployeeID, got.EmployeeID)
	assert.Equal(t, acct.Email, got.Email)
	assert.False(t, got.Disabled)
	assert.Empty(t, got.Entitlements)
}

func (s *suite) ensureUpdates(t *testing.T) {
	ctx, c := s.ctx(t), s.h.Connector
	u := s.name(t, "upd")
	s.cleanup(t, u)
	acct := s.account(u)
	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: acct})
	require.NoError(t, err)

	acct.FamilyName = "King"
	acct.DisplayName = "Ada King"
	acct.Email = u + ".king@example.com"
	r, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: acct})
	require.NoError(t, err)
	assert.False(t, r.Created)
	assert.True(t, r.Updated, "changed attributes must be reported as an update")

	got, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.Equal(t, acct.Email, got.Email)
}

func (s *suite) ensureDisabled(t *testing.T) {
	ctx, c := s.ctx(t), s.h.Connector
	u := s.name(t, "future")
	s.cleanup(t, u)
	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: s.account(u), Disabled: true})
	require.NoError(t, err)
	got, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.True(t, got.Disabled, "an account created disabled reads back disabled")
	if s.h.Login != nil {
		assert.Error(t, s.h.Login(ctx, u), "an account created disabled cannot log in")
	}
	_, err = c.EnableAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	got, err = c.GetAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.False(t, got.Disabled)
}

func (s *suite) grantRevoke(t *testing.T) {
	ctx, c := s.ctx(t), s.h.Connector
	u := s.name(t, "grant")
	s.cleanup(t, u)
	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: s.account(u)})
	require.NoError(t, err)
	e0, e1 := s.h.Entitlements[0], s.h.Entitlements[1]

	// Revoking what is not held changes nothing and is not an error.
	r, err := c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: e0})
	require.NoError(t, err)
	assert.False(t, r.Changed)

	r, err = c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: e0})
	require.NoError(t, err)
	assert.True(t, r.Changed)
	r, err = c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: e0})
	require.NoError(t, err)
	assert.False(t, r.Changed, "second grant changes nothing")
	_, err = c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: e1})
	require.NoError(t, err)

	got, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	want := []string{e0, e1}
	slices.Sort(want)
	assert.Equal(t, want, got.Entitlements)

	r, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: e0})
	require.NoError(t, err)
	assert.True(t, r.Changed)
	r, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: e0})
	require.NoError(t, err)
	assert.False(t, r.Changed, "second revoke changes nothing")

	got, err = c.GetAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.Equal(t, []string{e1}, got.Entitlements)

	// An entitlement the system does not know is a clear, final error.
	_, err = c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: s.h.Prefix + "nosuchgroup"})
	require.Error(t, err)
	assert.False(t, connectors.KindOf(err).Retryable(), "unknown entitlement must not be retried: %v", err)

	// Granting to an account that does not exist is a clear, final error.
	_, err = c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: s.h.Prefix + "ghost", Entitlement: e0})
	require.Error(t, err)
	assert.False(t, connectors.KindOf(err).Retryable(), "grant to a missing account must not be retried: %v", err)
}

func (s *suite) disableBlocksLogin(t *testing.T) {
	ctx, c := s.ctx(t), s.h.Connector
	u := s.name(t, "dis")
	s.cleanup(t, u)
	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: s.account(u)})
	require.NoError(t, err)
	if s.h.Login != nil {
		require.NoError(t, s.h.Login(ctx, u), "an enabled account can log in")
	}

	d, err := c.DisableAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.True(t, d.Changed)
	d, err = c.DisableAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.False(t, d.Changed, "second disable changes nothing")

	got, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.True(t, got.Disabled)
	if s.h.Login != nil {
		assert.Error(t, s.h.Login(ctx, u), "a disabled account cannot log in")
	}

	// Ensure on a disabled account must not silently re-enable it.
	_, err = c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: s.account(u)})
	require.NoError(t, err)
	got, err = c.GetAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.True(t, got.Disabled, "ensure must not re-enable a disabled account")

	e, err := c.EnableAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.True(t, e.Changed)
	e, err = c.EnableAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.False(t, e.Changed)
	if s.h.Login != nil {
		assert.NoError(t, s.h.Login(ctx, u), "a re-enabled account can log in again")
	}

	_, err = c.DisableAccount(ctx, connectors.AccountRequest{Username: s.h.Prefix + "ghost"})
	require.Error(t, err, "disabling a missing account is reported")
	assert.True(t, connectors.IsNotFound(err), "want NotFound, got %v", err)
}

func (s *suite) deleteIdempotent(t *testing.T) {
	ctx, c := s.ctx(t), s.h.Connector
	u := s.name(t, "del")
	s.cleanup(t, u)
	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: s.account(u)})
	require.NoError(t, err)
	_, err = c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: s.h.Entitlements[0]})
	require.NoError(t, err)

	r, err := c.DeleteAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.True(t, r.Deleted)
	r, err = c.DeleteAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	assert.False(t, r.Deleted, "deleting a missing account is not an error and changes nothing")

	_, err = c.GetAccount(ctx, connectors.AccountRequest{Username: u})
	assert.True(t, connectors.IsNotFound(err), "want NotFound after delete, got %v", err)
}

// verifyReadsBack walks an account through grant, disable, revoke and
// delete, asking Verify before and after each revocation: it must say "not
// in effect" before and "in effect" after, with a detail either way.
func (s *suite) verifyReadsBack(t *testing.T) {
	ctx, c := s.ctx(t), s.h.Connector
	u := s.name(t, "verify")
	s.cleanup(t, u)
	ent := s.h.Entitlements[0]
	check := func(req connectors.VerifyRequest, want bool, why string) {
		t.Helper()
		v, err := c.Verify(ctx, req)
		require.NoError(t, err, why)
		assert.Equal(t, want, v.Verified, "%s: %s", why, v.Detail)
		assert.NotEmpty(t, v.Detail, "%s: a verification always says what it read", why)
	}
	disabled := connectors.VerifyRequest{Username: u, Check: connectors.CheckDisabled}
	revoked := connectors.VerifyRequest{Username: u, Check: connectors.CheckRevoked, Entitlement: ent}
	deleted := connectors.VerifyRequest{Username: u, Check: connectors.CheckDeleted}

	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: s.account(u)})
	require.NoError(t, err)
	_, err = c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: ent})
	require.NoError(t, err)
	check(disabled, false, "an enabled account is not disabled")
	check(revoked, false, "a held entitlement is not revoked")
	check(deleted, false, "an existing account is not deleted")

	_, err = c.DisableAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	check(disabled, true, "after DisableAccount")
	check(revoked, false, "a disable does not revoke")

	_, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: ent})
	require.NoError(t, err)
	check(revoked, true, "after RevokeEntitlement")

	_, err = c.EnableAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	check(disabled, false, "after EnableAccount")

	_, err = c.DeleteAccount(ctx, connectors.AccountRequest{Username: u})
	require.NoError(t, err)
	check(deleted, true, "after DeleteAccount")
	check(revoked, true, "a deleted account holds nothing")
	check(disabled, false, "a deleted account is not a disabled one: the caller decides what a vanished account means")

	for _, bad := range []connectors.VerifyRequest{
		{Username: u, Check: "locked"},
		{Username: "", Check: connectors.CheckDeleted},
		{Username: u, Check: connectors.CheckRevoked},
		{Username: u, Check: connectors.CheckDisabled, Entitlement: ent},
	} {
		_, err := c.Verify(ctx, bad)
		assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err), "%+v: want InvalidInput, got %v", bad, err)
	}
}

func (s *suite) getMissing(t *testing.T) {
	_, err := s.h.Connector.GetAccount(s.ctx(t), connectors.AccountRequest{Username: s.h.Prefix + "nobody"})
	require.Error(t, err)
	assert.True(t, connectors.IsNotFound(err), "want NotFound, got %v", err)
}

func (s *suite) listPages(t *testing.T) {
	ctx, c := s.ctx(t), s.h.Connector
	var want []string
	for i := range 7 {
		u := s.name(t, fmt.Sprintf("list%02d", i))
		s.cleanup(t, u)
		_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: s.account(u)})
		require.NoError(t, err)
		want = append(want, u)
	}
	_, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: want[0], Entitlement: s.h.Entitlements[0]})
	require.NoError(t, err)

	seen := map[string]int{}
	var withEnt connectors.Account
	token, pages := "", 0
	for {
		resp, err := c.ListAccounts(ctx, connectors.ListAccountsRequest{PageSize: 3, PageToken: token})
		require.NoError(t, err)
		assert.LessOrEqual(t, len(resp.Accounts), 3, "a page never exceeds the page size")
		for _, a := range resp.Accounts {
			seen[a.Username]++
			if a.Username == want[0] {
				withEnt = a
			}
		}
		pages++
		require.Less(t, pages, 100000, "listing does not end")
		if resp.NextPageToken == "" {
			break
		}
		require.NotEqual(t, token, resp.NextPageToken, "page token must advance")
		token = resp.NextPageToken
	}
	for _, u := range want {
		assert.Equal(t, 1, seen[u], "account %s listed exactly once", u)
	}
	assert.GreaterOrEqual(t, pages, 3, "seven accounts in pages of three take at least three pages")
	assert.Equal(t, []string{s.h.Entitlements[0]}, withEnt.Entitlements, "listing carries entitlements")
}

// hostileInput feeds values that break naive DN, filter, SQL or JSON
// building. Each must either round-trip exactly or be refused as invalid,
// and must never create anything other than the intended account.
func (s *suite) hostileInput(t *testing.T) {
	c := s.h.Connector
	usernames := []string{
		"x,ou=groups", "x+cn=admin", `x"`, `x\`, "x*", "x(", "x)", "x\x00y", "x=y",
		"x\ny", `x"; DROP ROLE admin; --`, "x'; DROP TABLE users; --", "jos\u00e9",
		strings.Repeat("a", 300), "", " ", "*", "x)(uid=*",
	}
	before := s.allUsernames(t)
	for _, raw := range usernames {
		u := raw
		if u != "" && u != " " && u != "*" {
			u = s.h.Prefix + raw
		}
		t.Run(fmt.Sprintf("username %q", truncate(u)), func(t *testing.T) {
			ctx := s.ctx(t)
			_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: s.account(u)})
			if err != nil {
				assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err), "a refused value must be InvalidInput: %v", err)
				return
			}
			s.cleanup(t, u)
			got, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u})
			require.NoError(t, err)
			assert.Equal(t, u, got.Username, "stored exactly as intended")
		})
	}
	attrs := []string{`Robert"); DROP TABLE students;--`, "O'Brien, Jr.", "a\\b", "(*)", "=+<>#;", "Zoë Ñúñez 山田"}
	for i, v := range attrs {
		t.Run(fmt.Sprintf("attribute %q", v), func(t *testing.T) {
			ctx := s.ctx(t)
			u := s.name(t, fmt.Sprintf("attr%d", i))
			acct := s.account(u)
			acct.GivenName, acct.FamilyName, acct.DisplayName = v, v, v
			_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: acct})
			if err != nil {
				assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err), "%v", err)
				return
			}
			s.cleanup(t, u)
			got, err := c.GetAccount(ctx, connectors.AccountRequest{Username: u})
			require.NoError(t, err)
			if got.DisplayName != "" {
				assert.Equal(t, v, got.DisplayName, "attribute stored exactly")
			}
		})
	}
	// Nothing but the intended accounts appeared, and nothing vanished.
	after := s.allUsernames(t)
	for u := range before {
		assert.Contains(t, after, u, "hostile input removed an unrelated account")
	}
	for u := range after {
		if _, ok := before[u]; !ok {
			assert.True(t, strings.HasPrefix(u, s.h.Prefix), "unexpected account %q appeared", u)
		}
	}
}

func (s *suite) allUsernames(t *testing.T) map[string]struct{} {
	ctx := s.ctx(t)
	out := map[string]struct{}{}
	token := ""
	for {
		resp, err := s.h.Connector.ListAccounts(ctx, connectors.ListAccountsRequest{PageToken: token})
		require.NoError(t, err)
		for _, a := range resp.Accounts {
			out[a.Username] = struct{}{}
		}
		if resp.NextPageToken == "" {
			return out
		}
		token = resp.NextPageToken
	}
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// ErrLoginFailed is what harness Login functions may wrap when the target
// system refused the credentials.
var ErrLoginFailed = errors.New("login failed")
