package ldap_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/connectors/ldap"
	"github.com/provisio-dev/provisio/internal/testenv"
)

// sortedOrder is the order the directory gives these uids when sorting with
// caseIgnoreOrderingMatch (checked against the live server below): case and
// insignificant spaces ignored, compatibility characters folded, then
// compared byte-wise as UTF-8.
var sortedOrder = []string{
	"#hash", "[brack", "^caret", "_under", "`tick", "a b", "a  c", "alice", "Bob", "ǅemal", "ﬁle",
	"İstanbul", "K-kelvin", " lead", "straße", "x,y", "Zed", "Ｚenith", "~tilde", "ß2", "ärger",
	"Å-angstrom", "Émile", "µmicro", "Ωmega", "ωmega2",
}

// peopleOU creates an organizational unit of its own for a listing test, so
// the test knows every entry a listing may return; it and everything in it
// are deleted when the test ends.
func peopleOU(t testing.TB, admin *goldap.Conn) string {
	t.Helper()
	ou := "ou=list" + testenv.RandomLetters(8) + "," + baseDN
	add := goldap.NewAddRequest(ou, nil)
	add.Attribute("objectClass", []string{"organizationalUnit"})
	add.Attribute("ou", []string{strings.TrimPrefix(strings.SplitN(ou, ",", 2)[0], "ou=")})
	require.NoError(t, admin.Add(add))
	t.Cleanup(func() {
		conn := dialAdmin(t)
		defer conn.Close()
		res, err := conn.SearchWithPaging(goldap.NewSearchRequest(ou, goldap.ScopeSingleLevel, goldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"1.1"}, nil), 1000)
		if err != nil {
			t.Logf("cleanup of %s: %v", ou, err)
			return
		}
		for _, e := range res.Entries {
			_ = conn.Del(goldap.NewDelRequest(e.DN, nil))
		}
		if err := conn.Del(goldap.NewDelRequest(ou, nil)); err != nil {
			t.Logf("cleanup of %s: %v", ou, err)
		}
	})
	return ou
}

func dialAdmin(t testing.TB) *goldap.Conn {
	t.Helper()
	conn, err := goldap.DialURL(ldapURL, goldap.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}))
	if err != nil {
		t.Fatalf("LDAP server at %s is unreachable (%v): run `make stack`", ldapURL, err)
	}
	conn.SetTimeout(30 * time.Second)
	require.NoError(t, conn.Bind(bindDN, bindPassword))
	return conn
}

func dnIn(ou, username string) string { return "uid=" + goldap.EscapeDN(username) + "," + ou }

// addPeople adds an inetOrgPerson uid=<username>,ou for each username, over
// a few connections at once.
func addPeople(t testing.TB, ou string, usernames []string) {
	t.Helper()
	const width = 4
	var wg sync.WaitGroup
	errs := make([]error, width)
	for w := range width {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := dialAdmin(t)
			defer conn.Close()
			for i := w; i < len(usernames); i += width {
				add := goldap.NewAddRequest(dnIn(ou, usernames[i]), nil)
				add.Attribute("objectClass", []string{"inetOrgPerson"})
				add.Attribute("uid", []string{usernames[i]})
				add.Attribute("cn", []string{"x"})
				add.Attribute("sn", []string{"x"})
				add.Attribute("employeeNumber", []string{fmt.Sprintf("E%d", i)})
				if err := conn.Add(add); err != nil {
					errs[w] = fmt.Errorf("add %q: %w", usernames[i], err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}

// ouConfig is the test configuration listing ou.
func ouConfig(ou string) ldap.Config {
	cfg := testConfig()
	cfg.PeopleDN = ou
	return cfg
}

// listAll pages through a listing to its end, alternating between clients
// page by page, and returns the accounts in order and the number of pages.
func listAll(t testing.TB, size int, clients ...*ldap.Client) ([]connectors.Account, int) {
	t.Helper()
	ctx := testenv.Context(t)
	var all []connectors.Account
	token := ""
	for pages := 1; ; pages++ {
		resp, err := clients[(pages-1)%len(clients)].ListAccounts(ctx, connectors.ListAccountsRequest{PageSize: size, PageToken: token})
		require.NoError(t, err)
		require.LessOrEqual(t, len(resp.Accounts), size, "a page never exceeds the page size")
		all = append(all, resp.Accounts...)
		if resp.NextPageToken == "" {
			return all, pages
		}
		require.NotEmpty(t, resp.Accounts, "only the last page may be empty")
		require.NotEqual(t, token, resp.NextPageToken)
		token = resp.NextPageToken
		require.Less(t, pages, 100000, "listing does not end")
	}
}

func usernames(accts []connectors.Account) []string {
	out := make([]string, len(accts))
	for i, a := range accts {
		out[i] = a.Username
	}
	return out
}

// serverSorts reports whether the directory advertises server-side sorting
// and virtual list view.
func serverSorts(t testing.TB, admin *goldap.Conn) bool {
	t.Helper()
	res, err := admin.Search(goldap.NewSearchRequest("", goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"supportedControl"}, nil))
	require.NoError(t, err)
	ctrls := res.Entries[0].GetAttributeValues("supportedControl")
	return slices.Contains(ctrls, goldap.ControlTypeServerSideSorting) && slices.Contains(ctrls, goldap.ControlTypeVLVRequest)
}

// requireServerSort fails a test about the sorted path on a directory that
// cannot sort.
func requireServerSort(t testing.TB, admin *goldap.Conn) {
	t.Helper()
	if !serverSorts(t, admin) {
		t.Fatalf("the LDAP server at %s offers no server-side sorting and virtual list view: deployments/slapd/slapd.sh loads "+
			"the sssvlv overlay on start; restart it (deployments/slapd/slapd.sh stop && deployments/slapd/slapd.sh start, or make stack)", ldapURL)
	}
}

// vlvFirst is a critical VLV request control for the first entry of a new
// sorted snapshot.
func vlvFirst() goldap.Control {
	seq := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "VLV")
	seq.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(0), "before"))
	seq.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(0), "after"))
	off := ber.Encode(ber.ClassContext, ber.TypeConstructed, 0, nil, "byOffset")
	off.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(1), "offset"))
	off.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, int64(0), "count"))
	seq.AppendChild(off)
	return goldap.NewControlString(goldap.ControlTypeVLVRequest, true, string(seq.Bytes()))
}

// holdSortSlots takes every free server-side sort slot of the directory
// (OpenLDAP's sssvlv-max) until the test ends, so listings must fall back to
// scanning: a VLV snapshot keeps its slot until its connection closes. On a
// directory that cannot sort at all it holds nothing, listings scan anyway.
// Other clients of the directory scan meanwhile too, which is correct but
// slower; the window is one test.
func holdSortSlots(t *testing.T) {
	t.Helper()
	sort := goldap.NewControlServerSideSortingWithSortKeys([]*goldap.SortKey{{AttributeType: "uid", MatchingRule: "2.5.13.3"}})
	for range 512 {
		conn := dialAdmin(t)
		_, err := conn.Search(goldap.NewSearchRequest(baseDN, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"1.1"}, []goldap.Control{sort, vlvFirst()}))
		if err != nil {
			_ = conn.Close()
			if goldap.IsErrorAnyOf(err, goldap.LDAPResultBusy, goldap.LDAPResultUnavailableCriticalExtension) {
				return
			}
			t.Fatalf("holding a sort slot: %v", err)
		}
		t.Cleanup(func() { _ = conn.Close() })
	}
	t.Fatal("the directory never ran out of sort slots")
}

// TestListingOrderAgreesWithDirectory checks the documented order (sortKey)
// on names that differ in case, spaces, punctuation and Unicode, through the
// server-sorted path, the scanning fallback, and a listing that switches
// from one to the other midway.
func TestListingOrderAgreesWithDirectory(t *testing.T) {
	admin := adminConn(t)
	ou := peopleOU(t, admin)
	shuffled := slices.Clone(sortedOrder)
	slices.Reverse(shuffled)
	addPeople(t, ou, shuffled)

	if serverSorts(t, admin) {
		sort := goldap.NewControlServerSideSortingWithSortKeys([]*goldap.SortKey{{AttributeType: "uid", MatchingRule: "2.5.13.3"}})
		res, err := admin.Search(goldap.NewSearchRequest(ou, goldap.ScopeSingleLevel, goldap.NeverDerefAliases, 0, 0, false,
			"(uid=*)", []string{"uid"}, []goldap.Control{sort}))
		require.NoError(t, err)
		var server []string
		for _, e := range res.Entries {
			server = append(server, e.GetAttributeValue("uid"))
		}
		assert.Equal(t, sortedOrder, server, "the directory's own sort")
	}

	for _, size := range []int{1, 4, len(sortedOrder)} {
		sorted, _ := listAll(t, size, newClient(t, ouConfig(ou)))
		assert.Equal(t, sortedOrder, usernames(sorted), "server-sorted listing in pages of %d", size)
	}

	// Start sorted, then continue on another client (cursor unknown) while
	// the directory has no sort slot: the scan continues in the same order.
	ctx := testenv.Context(t)
	first, err := newClient(t, ouConfig(ou)).ListAccounts(ctx, connectors.ListAccountsRequest{PageSize: 5})
	require.NoError(t, err)
	holdSortSlots(t)
	scanning := newClient(t, ouConfig(ou))
	got := usernames(first.Accounts)
	for token := first.NextPageToken; token != ""; {
		resp, err := scanning.ListAccounts(ctx, connectors.ListAccountsRequest{PageSize: 5, PageToken: token})
		require.NoError(t, err)
		got = append(got, usernames(resp.Accounts)...)
		token = resp.NextPageToken
	}
	assert.Equal(t, sortedOrder, got, "sorted first page, scanned rest")

	scanned, _ := listAll(t, 4, newClient(t, ouConfig(ou)))
	assert.Equal(t, sortedOrder, usernames(scanned), "scanned listing")
}

// TestListingReturnsEverySortedAccountOnce lists 1,100 accounts whose
// names differ in case in pages of several sizes: through kept cursors,
// with no cursor kept (every page positions a new snapshot by value), and
// alternating between two clients (a token continued where its cursor is
// unknown). Each listing is exactly the sorted set.
func TestListingReturnsEverySortedAccountOnce(t *testing.T) {
	admin := adminConn(t)
	ou := peopleOU(t, admin)
	var names []string
	for i := range 1100 {
		name := fmt.Sprintf("user%04d", (i*7919)%1100) // inserted out of order
		if i%3 == 0 {
			name = strings.ToUpper(name)
		}
		names = append(names, name)
	}
	addPeople(t, ou, names)
	want := slices.Clone(names)
	slices.SortFunc(want, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })

	noCursor := ouConfig(ou)
	noCursor.ListCursors = -1
	kept, other, fresh := newClient(t, ouConfig(ou)), newClient(t, ouConfig(ou)), newClient(t, noCursor)
	tests := []struct {
		name    string
		size    int
		clients []*ldap.Client
	}{
		{"one page", connectors.MaxPageSize, []*ldap.Client{kept}},
		{"pages of 97", 97, []*ldap.Client{kept}},
		{"pages of 13", 13, []*ldap.Client{kept}},
		{"no cursor kept", 97, []*ldap.Client{fresh}},
		{"alternating clients", 250, []*ldap.Client{kept, other}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, pages := listAll(t, tt.size, tt.clients...)
			assert.Equal(t, want, usernames(got))
			assert.Equal(t, (len(want)+tt.size-1)/tt.size, pages, "every page but the last is full")
			for _, a := range got {
				assert.NotEmpty(t, a.EmployeeID, "attributes are read: %s", a.Username)
			}
		})
	}
}

// TestListingSurvivesChangesBetweenPages deletes and adds accounts between
// pages, including the account a token ends on: every account that exists
// throughout the listing appears exactly once and a deleted one never
// after its deletion, whether the next page comes from the kept snapshot
// or from a new one positioned by value.
func TestListingSurvivesChangesBetweenPages(t *testing.T) {
	for name, cfgFor := range map[string]func(string) ldap.Config{
		"kept cursor": ouConfig,
		"no cursor": func(ou string) ldap.Config {
			cfg := ouConfig(ou)
			cfg.ListCursors = -1
			return cfg
		},
	} {
		t.Run(name, func(t *testing.T) {
			admin := adminConn(t)
			ou := peopleOU(t, admin)
			var names []string
			for i := range 30 {
				names = append(names, fmt.Sprintf("chg%02d", i))
			}
			addPeople(t, ou, names)
			c, ctx := newClient(t, cfgFor(ou)), testenv.Context(t)

			first, err := c.ListAccounts(ctx, connectors.ListAccountsRequest{PageSize: 10})
			require.NoError(t, err)
			require.Equal(t, names[:10], usernames(first.Accounts))
			for _, u := range []string{names[9], names[15]} { // the token's account, one ahead
				require.NoError(t, admin.Del(goldap.NewDelRequest(dnIn(ou, u), nil)))
			}
			addPeople(t, ou, []string{"chg00a", "chg15a", "chg99"})

			got := usernames(first.Accounts)
			for token := first.NextPageToken; token != ""; {
				resp, err := c.ListAccounts(ctx, connectors.ListAccountsRequest{PageSize: 10, PageToken: token})
				require.NoError(t, err)
				got = append(got, usernames(resp.Accounts)...)
				token = resp.NextPageToken
			}
			seen := map[string]int{}
			for _, u := range got {
				seen[u]++
			}
			for i, u := range names {
				switch i {
				case 9:
					assert.Equal(t, 1, seen[u], "%s was listed before its deletion", u)
				case 15:
					assert.Zero(t, seen[u], "%s was deleted before its page", u)
				default:
					assert.Equal(t, 1, seen[u], "%s existed throughout", u)
				}
			}
			assert.Zero(t, seen["chg00a"], "an account added before the position reached is not listed")
			assert.LessOrEqual(t, seen["chg15a"]+seen["chg99"], 2, "an account added midway is listed at most once")
			assert.True(t, slices.IsSorted(got), "in order")
		})
	}
}

// TestEvictedCursorTokenContinues interleaves two listings on a client that
// keeps one cursor: each page of one listing evicts (closes) the other's
// cursor, whose next page then positions a new snapshot by value. Both
// listings are complete and in order, and no more connections stay open
// than the pool's and the one kept cursor's.
func TestEvictedCursorTokenContinues(t *testing.T) {
	admin := adminConn(t)
	ou := peopleOU(t, admin)
	var want []string
	for i := range 60 {
		want = append(want, fmt.Sprintf("evict%03d", i))
	}
	addPeople(t, ou, want)
	p := newProxy(t)
	cfg := ouConfig(ou)
	cfg.URL, cfg.PoolSize, cfg.ListCursors = p.url(), 1, 1
	c := newClient(t, cfg)
	ctx := testenv.Context(t)

	var tokens [2]string
	var got [2][]string
	var done [2]bool
	for !done[0] || !done[1] {
		for i := range 2 {
			if done[i] {
				continue
			}
			size := 7 + 4*i // the listings page differently
			resp, err := c.ListAccounts(ctx, connectors.ListAccountsRequest{PageSize: size, PageToken: tokens[i]})
			require.NoError(t, err)
			got[i] = append(got[i], usernames(resp.Accounts)...)
			tokens[i], done[i] = resp.NextPageToken, resp.NextPageToken == ""
			// The proxy notices a closed connection a moment later.
			assert.Eventually(t, func() bool { return p.live.Load() <= 2 }, 2*time.Second, 5*time.Millisecond,
				"one pooled connection and at most one kept cursor")
		}
	}
	assert.Equal(t, want, got[0])
	assert.Equal(t, want, got[1])
	assert.Eventually(t, func() bool { return p.live.Load() == 1 }, 5*time.Second, 20*time.Millisecond,
		"a listing that ended closed its cursor")
}

// TestListingCursorIsClosedWhenIdle checks that a kept cursor's connection
// (and so its server-side snapshot) is closed after ListCursorIdle, and that
// its token still continues.
func TestListingCursorIsClosedWhenIdle(t *testing.T) {
	admin := adminConn(t)
	requireServerSort(t, admin)
	ou := peopleOU(t, admin)
	want := []string{"idle1", "idle2", "idle3", "idle4", "idle5"}
	addPeople(t, ou, want)
	p := newProxy(t)
	cfg := ouConfig(ou)
	cfg.URL, cfg.PoolSize, cfg.ListCursorIdle = p.url(), 1, 200*time.Millisecond
	c := newClient(t, cfg)
	ctx := testenv.Context(t)

	resp, err := c.ListAccounts(ctx, connectors.ListAccountsRequest{PageSize: 2})
	require.NoError(t, err)
	assert.Equal(t, int64(2), p.live.Load(), "the pooled connection and the listing's cursor")
	assert.Eventually(t, func() bool { return p.live.Load() == 1 }, 5*time.Second, 20*time.Millisecond, "idle cursor closed")
	got := usernames(resp.Accounts)
	for token := resp.NextPageToken; token != ""; {
		resp, err := c.ListAccounts(ctx, connectors.ListAccountsRequest{PageSize: 2, PageToken: token})
		require.NoError(t, err)
		got = append(got, usernames(resp.Accounts)...)
		token = resp.NextPageToken
	}
	assert.Equal(t, want, got)
}

// TestSortedPageCostsAPage proves a page of a sorted listing reads about a
// page from the directory, not every account (what the scanning fallback
// does), on the first page and on later ones.
func TestSortedPageCostsAPage(t *testing.T) {
	admin := adminConn(t)
	requireServerSort(t, admin)
	ou := peopleOU(t, admin)
	var names []string
	for i := range 1000 {
		names = append(names, fmt.Sprintf("cost%04d", i))
	}
	addPeople(t, ou, names)
	p := newProxy(t)
	cfg := ouConfig(ou)
	cfg.URL = p.url()
	c := newClient(t, cfg)
	ctx := testenv.Context(t)

	token := ""
	for page := range 3 {
		p.reset()
		resp, err := c.ListAccounts(ctx, connectors.ListAccountsRequest{PageSize: 10, PageToken: token})
		require.NoError(t, err)
		assert.Equal(t, names[page*10:page*10+10], usernames(resp.Accounts))
		// 1,000 entries are ~90 KB; ten entries and one group search ~2 KB.
		assert.Less(t, p.down.Load(), int64(8<<10), "page %d read %d bytes", page, p.down.Load())
		token = resp.NextPageToken
	}
}

// TestListingEntitlementsWithLargeGroups checks that the one group search
// per page gives every account exactly its groups: a group of 5,000 member
// values (most naming no listed account, some spelling a listed account's
// DN in another case or with spaces), a group in a sub-OU of GroupsDN, the
// placeholder, and accounts in no group; the same as GetAccount reports.
func TestListingEntitlementsWithLargeGroups(t *testing.T) {
	admin := adminConn(t)
	ou := peopleOU(t, admin)
	prefix := testenv.RandomLetters(8)
	const n = 300
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("ent%03d", i))
	}
	addPeople(t, ou, names)

	want := map[string][]string{}
	big, some, nested := prefix+"big", prefix+"some", prefix+"nested"
	var bigMembers []string
	for i, u := range names {
		if i%5 == 4 {
			continue // in no big group
		}
		dn := dnIn(ou, u)
		switch i % 5 {
		case 1:
			dn = strings.ToUpper(dn)
		case 2:
			dn = strings.ReplaceAll(dn, ",", ", ")
		}
		bigMembers = append(bigMembers, dn)
		want[u] = append(want[u], big)
	}
	for i := len(bigMembers); i < 5000; i++ {
		bigMembers = append(bigMembers, dnIn(ou, fmt.Sprintf("ghost%04d", i)))
	}
	createGroup(t, admin, big, bigMembers...)
	var someMembers []string
	for i := 0; i < n; i += 7 {
		someMembers = append(someMembers, dnIn(ou, names[i]))
		want[names[i]] = append(want[names[i]], some)
	}
	createGroup(t, admin, some, append(someMembers, ldap.DefaultPlaceholderMember)...)

	sub := "ou=" + prefix + "sub," + groupsDN
	addOU := goldap.NewAddRequest(sub, nil)
	addOU.Attribute("objectClass", []string{"organizationalUnit"})
	addOU.Attribute("ou", []string{prefix + "sub"})
	require.NoError(t, admin.Add(addOU))
	nestedDN := "cn=" + nested + "," + sub
	addGroup := goldap.NewAddRequest(nestedDN, nil)
	addGroup.Attribute("objectClass", []string{"groupOfNames"})
	addGroup.Attribute("cn", []string{nested})
	addGroup.Attribute("member", []string{dnIn(ou, names[3]), dnIn(ou, names[4])})
	require.NoError(t, admin.Add(addGroup))
	t.Cleanup(func() {
		_ = admin.Del(goldap.NewDelRequest(nestedDN, nil))
		_ = admin.Del(goldap.NewDelRequest(sub, nil))
	})
	want[names[3]] = append(want[names[3]], nested)
	want[names[4]] = append(want[names[4]], nested)
	for u := range want {
		slices.Sort(want[u])
	}

	c := newClient(t, ouConfig(ou))
	got, _ := listAll(t, 64, c)
	require.Len(t, got, n)
	for _, a := range got {
		assert.Equal(t, want[a.Username], a.Entitlements, "entitlements of %s", a.Username)
	}
	ctx := testenv.Context(t)
	for _, i := range []int{0, 1, 2, 3, 4, 7, 299} {
		acct, err := c.GetAccount(ctx, connectors.AccountRequest{Username: names[i]})
		require.NoError(t, err)
		assert.Equal(t, got[i].Entitlements, acct.Entitlements, "listing and GetAccount agree on %s", names[i])
	}
}

// BenchmarkListAccounts lists 2,000 accounts in pages of 500 (the default
// page size) per iteration.
func BenchmarkListAccounts(b *testing.B) {
	admin := dialAdmin(b)
	defer admin.Close()
	ou := peopleOU(b, admin)
	const n = 2000
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("bench%05d", i))
	}
	addPeople(b, ou, names)
	c, err := ldap.New(context.Background(), ouConfig(ou))
	require.NoError(b, err)
	defer c.Close()
	listed := 0
	for b.Loop() {
		got, _ := listAll(b, connectors.DefaultPageSize, c)
		if len(got) != n {
			b.Fatalf("listed %d accounts, want %d", len(got), n)
		}
		listed += len(got)
	}
	b.ReportMetric(float64(listed)/b.Elapsed().Seconds(), "accounts/s")
}
