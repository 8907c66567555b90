package ldap_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/testenv"
)

// bigGroupSize is the group size the issue asks membership changes to be
// tested with.
const bigGroupSize = 5000

// bigGroup creates a group of bigGroupSize member values in one Add (they
// name no real entries: directories do not check) and returns its cn, its
// DN and the values, sorted.
func bigGroup(t *testing.T, admin *goldap.Conn, prefix string) (cn, dn string, fill []string) {
	t.Helper()
	fill = make([]string, bigGroupSize)
	for i := range fill {
		fill[i] = userDN(fmt.Sprintf("%sfill%05d", prefix, i))
	}
	cn = prefix + "big"
	return cn, createGroup(t, admin, cn, fill...), fill
}

// sortedMembers reads a group's member values and sorts them, for
// comparing as a set.
func sortedMembers(t *testing.T, admin *goldap.Conn, gdn string) []string {
	t.Helper()
	got := members(t, admin, gdn)
	slices.Sort(got)
	return got
}

// concurrently runs fn for every username at once and returns each
// call's error, by index.
func concurrently(users []string, fn func(username string) (bool, error)) (changed []bool, errs []error) {
	changed, errs = make([]bool, len(users)), make([]error, len(users))
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() { changed[i], errs[i] = fn(u) })
	}
	wg.Wait()
	return changed, errs
}

// TestLargeGroupConcurrentChangesAllLand proves that membership changes on
// a 5,000-member group never overwrite each other: 20 grants at once all
// land, 20 revokes at once all land, grants and revokes mixed all land, and
// the 5,000 other members are exactly what they were throughout. A
// read-modify-write of the member list would lose all but one of each
// batch. (TestLargeGroupGrantRevokeSendsOneValue shows on the wire that a
// single change sends one value.)
func TestLargeGroupConcurrentChangesAllLand(t *testing.T) {
	ctx, admin := testenv.Context(t), adminConn(t)
	cfg := testConfig()
	cfg.PoolSize = 20 // every change on a connection of its own, truly at once
	c := newClient(t, cfg)
	prefix := testenv.RandomLetters(8)
	group, gdn, fill := bigGroup(t, admin, prefix)

	users := make([]string, 20)
	dns := make([]string, len(users))
	for i := range users {
		users[i] = fmt.Sprintf("%sjoin%02d", prefix, i)
		dns[i] = userDN(users[i])
		ensure(t, c, users[i], false)
	}
	grant := func(u string) (bool, error) {
		r, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: group})
		return r.Changed, err
	}
	revoke := func(u string) (bool, error) {
		r, err := c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: group})
		return r.Changed, err
	}
	want := func(held ...string) []string {
		return slices.Sorted(slices.Values(append(slices.Clone(fill), held...)))
	}
	requireAllChanged := func(what string, changed []bool, errs []error) {
		t.Helper()
		for i := range users[:len(changed)] {
			require.NoError(t, errs[i], "%s %d", what, i)
			assert.True(t, changed[i], "%s %d reports no change", what, i)
		}
	}

	changed, errs := concurrently(users, grant)
	requireAllChanged("grant", changed, errs)
	assert.Equal(t, want(dns...), sortedMembers(t, admin, gdn), "all 20 grants land and the 5,000 others stay")

	changed, errs = concurrently(users, revoke)
	requireAllChanged("revoke", changed, errs)
	assert.Equal(t, want(), sortedMembers(t, admin, gdn), "all 20 revokes land and the 5,000 others stay")

	// Mixed: the first half joins while the second half, granted first,
	// leaves.
	half := len(users) / 2
	for _, u := range users[half:] {
		_, err := grant(u)
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	var grantChanged, revokeChanged []bool
	var grantErrs, revokeErrs []error
	wg.Go(func() { grantChanged, grantErrs = concurrently(users[:half], grant) })
	wg.Go(func() { revokeChanged, revokeErrs = concurrently(users[half:], revoke) })
	wg.Wait()
	requireAllChanged("mixed grant", grantChanged, grantErrs)
	requireAllChanged("mixed revoke", revokeChanged, revokeErrs)
	assert.Equal(t, want(dns[:half]...), sortedMembers(t, admin, gdn), "grants and revokes at once all land")

	// Verify agrees with the directory for members and non-members alike.
	for i, u := range users {
		v, err := c.Verify(ctx, connectors.VerifyRequest{Username: u, Check: connectors.CheckRevoked, Entitlement: group})
		require.NoError(t, err)
		assert.Equal(t, i >= half, v.Verified, "%s: %s", u, v.Detail)
	}
}

// TestLargeGroupVerifyAndDeleteReadOneValue proves that verifying a revoke
// on a 5,000-member group asks the directory about one value (an LDAP
// Compare) rather than reading the member list, and that deleting one
// member account leaves the other 5,000 in place and verifies as deleted.
func TestLargeGroupVerifyAndDeleteReadOneValue(t *testing.T) {
	ctx, admin := testenv.Context(t), adminConn(t)
	p := newProxy(t)
	cfg := testConfig()
	cfg.URL = p.url()
	c := newClient(t, cfg)
	prefix := testenv.RandomLetters(8)
	group, gdn, fill := bigGroup(t, admin, prefix)
	member, outsider := prefix+"member", prefix+"outsider"
	ensure(t, c, member, false)
	ensure(t, c, outsider, false)
	_, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: member, Entitlement: group})
	require.NoError(t, err)

	// The member list is about 250 kB; a Compare and its lookups are a few
	// hundred bytes.
	const budget = 4096
	for _, tt := range []struct {
		username string
		want     bool
	}{{member, false}, {outsider, true}} {
		p.reset()
		v, err := c.Verify(ctx, connectors.VerifyRequest{Username: tt.username, Check: connectors.CheckRevoked, Entitlement: group})
		require.NoError(t, err)
		assert.Equal(t, tt.want, v.Verified, "%s: %s", tt.username, v.Detail)
		assert.Less(t, p.down.Load(), int64(budget), "verifying %s read %d bytes: the member list was fetched", tt.username, p.down.Load())
		assert.Less(t, p.up.Load(), int64(budget), "verifying %s sent %d bytes", tt.username, p.up.Load())
	}

	_, err = c.DeleteAccount(ctx, connectors.AccountRequest{Username: member})
	require.NoError(t, err)
	p.reset()
	v, err := c.Verify(ctx, connectors.VerifyRequest{Username: member, Check: connectors.CheckDeleted})
	require.NoError(t, err)
	assert.True(t, v.Verified, v.Detail)
	assert.Less(t, p.down.Load(), int64(budget), "verifying a delete read %d bytes: a member list was fetched", p.down.Load())
	assert.Equal(t, fill, sortedMembers(t, admin, gdn), "deleting one member keeps the 5,000 others")
}
