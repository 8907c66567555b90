package ldap_test

import (
	"fmt"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/connectors/ldap"
	"github.com/provisio-dev/provisio/internal/testenv"
)

// dropGroupWhenDone deletes the group entry cn when the test ends, if the
// test created it.
func dropGroupWhenDone(t *testing.T, conn *goldap.Conn, cn string) {
	t.Helper()
	dn := groupDN(cn)
	t.Cleanup(func() {
		err := conn.Del(goldap.NewDelRequest(dn, nil))
		if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			t.Logf("cleanup of group %s: %v", dn, err)
		}
	})
}

// groupEntries searches the whole tree for groupOfNames entries whose cn
// starts with prefix.
func groupEntries(t *testing.T, conn *goldap.Conn, prefix string) []*goldap.Entry {
	t.Helper()
	res, err := conn.Search(goldap.NewSearchRequest(baseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass=groupOfNames)(cn="+goldap.EscapeFilter(prefix)+"*))", []string{"cn", "member", "description"}, nil))
	require.NoError(t, err)
	return res.Entries
}

func TestEnsureEntitlement(t *testing.T) {
	ctx, c, admin := testenv.Context(t), newClient(t, testConfig()), adminConn(t)
	prefix := testenv.RandomLetters(8)
	name := prefix + "ent"
	dropGroupWhenDone(t, admin, name)

	r, err := c.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: name, Description: "Remote network access"})
	require.NoError(t, err)
	assert.True(t, r.Changed, "first call creates the group")
	r, err = c.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: name, Description: "another text"})
	require.NoError(t, err)
	assert.False(t, r.Changed, "second call finds it")

	entries := groupEntries(t, admin, prefix)
	require.Len(t, entries, 1)
	e := entries[0]
	assert.Equal(t, groupDN(name), e.DN)
	assert.Equal(t, []string{name}, e.GetAttributeValues("cn"))
	assert.Equal(t, []string{ldap.DefaultPlaceholderMember}, e.GetAttributeValues("member"))
	assert.Equal(t, []string{"Remote network access"}, e.GetAttributeValues("description"),
		"the description is written once and an existing group's is left alone")

	user := prefix + "user"
	ensure(t, c, user, false)
	g, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: user, Entitlement: name})
	require.NoError(t, err)
	assert.True(t, g.Changed)
	acct, err := c.GetAccount(ctx, connectors.AccountRequest{Username: user})
	require.NoError(t, err)
	assert.Equal(t, []string{name}, acct.Entitlements)
	g, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: user, Entitlement: name})
	require.NoError(t, err)
	assert.True(t, g.Changed)
	assert.Equal(t, []string{ldap.DefaultPlaceholderMember}, members(t, admin, groupDN(name)))

	// Without a description the attribute is simply absent.
	bare := prefix + "bare"
	dropGroupWhenDone(t, admin, bare)
	r, err = c.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: bare})
	require.NoError(t, err)
	assert.True(t, r.Changed)
	for _, e := range groupEntries(t, admin, bare) {
		assert.Empty(t, e.GetAttributeValues("description"))
	}
}

// TestEnsureEntitlementFindsExistingGroups: a group that grants would use
// (in a sub-tree of GroupsDN, or differing only in case, which LDAP's cn
// matching ignores) counts as existing and no duplicate is made.
func TestEnsureEntitlementFindsExistingGroups(t *testing.T) {
	ctx, c, admin := testenv.Context(t), newClient(t, testConfig()), adminConn(t)
	prefix := testenv.RandomLetters(8)
	createGroup(t, admin, prefix+"Mixed")
	r, err := c.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: prefix + "mixed"})
	require.NoError(t, err)
	assert.False(t, r.Changed, "cn matching ignores case")

	ou := "ou=" + prefix + "," + groupsDN
	add := goldap.NewAddRequest(ou, nil)
	add.Attribute("objectClass", []string{"top", "organizationalUnit"})
	add.Attribute("ou", []string{prefix})
	require.NoError(t, admin.Add(add))
	t.Cleanup(func() {
		if err := admin.Del(goldap.NewDelRequest(ou, nil)); err != nil {
			t.Logf("cleanup of %s: %v", ou, err)
		}
	})
	nested := "cn=" + prefix + "nested," + ou
	add = goldap.NewAddRequest(nested, nil)
	add.Attribute("objectClass", []string{"top", "groupOfNames"})
	add.Attribute("cn", []string{prefix + "nested"})
	add.Attribute("member", []string{ldap.DefaultPlaceholderMember})
	require.NoError(t, admin.Add(add))
	t.Cleanup(func() {
		if err := admin.Del(goldap.NewDelRequest(nested, nil)); err != nil {
			t.Logf("cleanup of %s: %v", nested, err)
		}
	})
	r, err = c.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: prefix + "nested"})
	require.NoError(t, err)
	assert.False(t, r.Changed, "groups are found in the whole subtree")

	assert.Len(t, groupEntries(t, admin, prefix), 2, "no duplicate group")
}

// TestEnsureEntitlementHostileNames proves that DN and filter
// metacharacters stay inside the cn value: each name becomes exactly one
// groupOfNames directly under GroupsDN whose cn is the name, a filter-like
// name does not mistake other groups for itself, and grants then work.
func TestEnsureEntitlementHostileNames(t *testing.T) {
	ctx, c, admin := testenv.Context(t), newClient(t, testConfig()), adminConn(t)
	prefix := testenv.RandomLetters(8)
	canary := prefix + "canary"
	createGroup(t, admin, canary)
	user := prefix + "user"
	ensure(t, c, user, false)

	names := []string{
		prefix + "x,ou=people",
		prefix + "x+uid=admin",
		prefix + "x;ou=people",
		prefix + `x\`,
		prefix + `x"<>=`,
		"#" + prefix,
		prefix + "*",
		prefix + "*)(cn=*",
		prefix + `\2a`,
		prefix + "josé 山田",
	}
	for _, name := range names {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			dropGroupWhenDone(t, admin, name)
			r, err := c.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: name, Description: name})
			require.NoError(t, err)
			assert.True(t, r.Changed, "a wildcard-like name must not match the canary or earlier groups")
			r, err = c.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: name})
			require.NoError(t, err)
			assert.False(t, r.Changed)

			res, err := admin.Search(goldap.NewSearchRequest(baseDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
				"(cn="+goldap.EscapeFilter(name)+")", []string{"cn", "objectClass"}, nil))
			require.NoError(t, err)
			require.Len(t, res.Entries, 1, "exactly one entry carries this cn")
			got, err := goldap.ParseDN(res.Entries[0].DN)
			require.NoError(t, err)
			want, err := goldap.ParseDN(groupDN(name))
			require.NoError(t, err)
			assert.True(t, got.Equal(want), "entry %s, want %s", res.Entries[0].DN, groupDN(name))
			require.Len(t, got.RDNs[0].Attributes, 1, "single-valued RDN")
			assert.Equal(t, name, got.RDNs[0].Attributes[0].Value)

			g, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: user, Entitlement: name})
			require.NoError(t, err)
			assert.True(t, g.Changed)
			_, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: user, Entitlement: name})
			require.NoError(t, err)
		})
	}
	assert.Equal(t, []string{ldap.DefaultPlaceholderMember}, members(t, admin, groupDN(canary)), "the canary is untouched")
	res, err := admin.Search(goldap.NewSearchRequest(peopleDN, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=groupOfNames)", []string{"1.1"}, nil))
	require.NoError(t, err)
	assert.Empty(t, res.Entries, "no group may land under %s", peopleDN)
}

func TestEnsureEntitlementRefusals(t *testing.T) {
	ctx, c, admin := testenv.Context(t), newClient(t, testConfig()), adminConn(t)
	prefix := testenv.RandomLetters(8)
	tests := []struct {
		name string
		req  connectors.EnsureEntitlementRequest
		want connectors.ErrorKind
	}{
		{"empty name", connectors.EnsureEntitlementRequest{Name: ""}, connectors.KindInvalid},
		{"too long", connectors.EnsureEntitlementRequest{Name: prefix + strings.Repeat("a", 65)}, connectors.KindInvalid},
		{"NUL", connectors.EnsureEntitlementRequest{Name: prefix + "x\x00y"}, connectors.KindInvalid},
		{"newline", connectors.EnsureEntitlementRequest{Name: prefix + "x\ny"}, connectors.KindInvalid},
		{"invalid UTF-8", connectors.EnsureEntitlementRequest{Name: prefix + "x\xffy"}, connectors.KindInvalid},
		{"description not UTF-8", connectors.EnsureEntitlementRequest{Name: prefix + "d1", Description: "x\xff"}, connectors.KindInvalid},
		{"description with NUL", connectors.EnsureEntitlementRequest{Name: prefix + "d2", Description: "x\x00"}, connectors.KindInvalid},
		{"description too long", connectors.EnsureEntitlementRequest{Name: prefix + "d3", Description: strings.Repeat("é", 1025)}, connectors.KindInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.EnsureEntitlement(ctx, tt.req)
			require.Error(t, err)
			assert.Equal(t, tt.want, connectors.KindOf(err), "%v", err)
		})
	}
	assert.Empty(t, groupEntries(t, admin, prefix), "nothing was created")

	// The DN is taken by an entry grants could not use.
	name := prefix + "role"
	add := goldap.NewAddRequest(groupDN(name), nil)
	add.Attribute("objectClass", []string{"top", "organizationalRole"})
	add.Attribute("cn", []string{name})
	require.NoError(t, admin.Add(add))
	dropGroupWhenDone(t, admin, name)
	_, err := c.EnsureEntitlement(ctx, connectors.EnsureEntitlementRequest{Name: name})
	assert.Equal(t, connectors.KindConflict, connectors.KindOf(err), "%v", err)
}
