package postgres

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/testenv"
)

// bigGroupSize is the group size the issue asks to test with.
const bigGroupSize = 5000

// TestBigGroupMembership grants and revokes accounts, one at a time and
// twenty at once, in a group that already has 5,000 members. A change adds
// or removes one pg_auth_members row: the 5,000 rows stay the very same
// tuples (same xmin, so nothing rewrote the list), and no concurrent change
// is lost.
func TestBigGroupMembership(t *testing.T) {
	f := newFixture(t)
	ctx := testenv.Context(t)
	group := f.prefix + "big"
	memberPrefix := f.prefix + "m"
	f.createGroup(group, "")

	// The DO blocks take the names from session settings, not from text
	// pasted into the code.
	f.exec(`SELECT set_config('provisio_test.member_prefix', $1, false), set_config('provisio_test.group', $2, false)`,
		memberPrefix, group)
	t.Cleanup(func() {
		// One statement for all 5,000: the fixture's per-role cleanup would
		// take 15,000 round trips.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_, err := f.admin.Exec(ctx, `DO $$
			DECLARE r text;
			BEGIN
				FOR r IN SELECT rolname FROM pg_roles
					WHERE starts_with(rolname, current_setting('provisio_test.member_prefix'))
				LOOP
					EXECUTE format('DROP ROLE %I', r);
				END LOOP;
			END $$`)
		if err != nil {
			t.Logf("cleanup of the group's members: %v", err)
		}
	})
	f.exec(fmt.Sprintf(`DO $$
		BEGIN
			FOR i IN 1..%d LOOP
				EXECUTE format('CREATE ROLE %%I NOLOGIN IN ROLE %%I',
					current_setting('provisio_test.member_prefix') || lpad(i::text, 4, '0'),
					current_setting('provisio_test.group'));
			END LOOP;
		END $$`, bigGroupSize))

	// members maps each member of the group to the xmin of its membership
	// row: a row deleted and inserted again would have a new one.
	members := func(t *testing.T) map[string]string {
		t.Helper()
		rows, err := f.admin.Query(ctx, `SELECT u.rolname::text, m.xmin::text FROM pg_auth_members m
			JOIN pg_roles u ON u.oid = m.member
			WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = $1)`, group)
		require.NoError(t, err)
		defer rows.Close()
		got := map[string]string{}
		for rows.Next() {
			var name, xmin string
			require.NoError(t, rows.Scan(&name, &xmin))
			got[name] = xmin
		}
		require.NoError(t, rows.Err())
		return got
	}
	original := members(t)
	require.Len(t, original, bigGroupSize)

	// A pool as wide as the burst, so the twenty changes really overlap.
	const burst = 20
	c, err := New(ctx, Config{URL: f.url, MaxConns: burst})
	require.NoError(t, err)
	defer c.Close()
	accounts := make([]string, burst)
	for i := range accounts {
		accounts[i] = f.prefix + "acct" + strconv.Itoa(i)
		_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: account(accounts[i])})
		require.NoError(t, err)
	}

	// holding checks the group's members are the original rows untouched
	// plus exactly the accounts given, and that Verify agrees for every
	// account.
	holding := func(t *testing.T, held []string) {
		t.Helper()
		got := members(t)
		for name, xmin := range original {
			if got[name] != xmin {
				t.Fatalf("original member %q: membership row xmin %q, want %q (row lost or rewritten)", name, got[name], xmin)
			}
		}
		added := slices.Sorted(maps.Keys(got))
		added = slices.DeleteFunc(added, func(name string) bool { _, ok := original[name]; return ok })
		assert.ElementsMatch(t, held, added, "members beyond the original %d", bigGroupSize)
		for _, a := range accounts {
			v, err := c.Verify(ctx, connectors.VerifyRequest{Username: a, Check: connectors.CheckRevoked, Entitlement: group})
			require.NoError(t, err)
			assert.Equal(t, !slices.Contains(held, a), v.Verified, "%s: %s", a, v.Detail)
		}
	}

	// all runs change for every account at once, released together.
	all := func(t *testing.T, change func(context.Context, connectors.EntitlementRequest) (connectors.EntitlementResponse, error)) {
		t.Helper()
		start := make(chan struct{})
		errs := make([]error, len(accounts))
		changed := make([]bool, len(accounts))
		var wg sync.WaitGroup
		for i, a := range accounts {
			wg.Go(func() {
				<-start
				r, err := change(ctx, connectors.EntitlementRequest{Username: a, Entitlement: group})
				errs[i], changed[i] = err, r.Changed
			})
		}
		close(start)
		wg.Wait()
		for i, a := range accounts {
			require.NoError(t, errs[i], a)
			assert.True(t, changed[i], "%s: each change is reported as made", a)
		}
	}

	t.Run("one grant and one revoke", func(t *testing.T) {
		r, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: accounts[0], Entitlement: group})
		require.NoError(t, err)
		assert.True(t, r.Changed)
		holding(t, accounts[:1])
		r, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: accounts[0], Entitlement: group})
		require.NoError(t, err)
		assert.True(t, r.Changed)
		holding(t, nil)
	})
	t.Run("twenty concurrent grants all land", func(t *testing.T) {
		all(t, c.GrantEntitlement)
		holding(t, accounts)
	})
	t.Run("twenty concurrent revokes all land", func(t *testing.T) {
		all(t, c.RevokeEntitlement)
		holding(t, nil)
	})
}
