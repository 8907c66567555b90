package ldap

import (
	"net"
	"slices"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSortKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice", "alice"},
		{"Bob", "bob"},
		{"MiXeD_Case-1", "mixed_case-1"},
		{" lead", "lead"},
		{"trail  ", "trail"},
		{"a  b   c", "a b c"},
		{"   ", " "},
		{"", ""},
		{"Émile", "émile"},
		{"ÄRGER", "ärger"},
		{"ﬁle", "file"},           // compatibility ligature
		{"Ｚenith", "zenith"},      // full-width letter, lower-cased first
		{"K-kelvin", "k-kelvin"},  // KELVIN SIGN
		{"ǅemal", "džemal"},       // title case digraph
		{"µ", "μ"},                // MICRO SIGN to GREEK SMALL LETTER MU
		{"a\u00a0\u00a0b", "a b"}, // NO-BREAK SPACE becomes a space, then collapses
		{"straße", "straße"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, sortKey(tt.in), "sortKey(%q)", tt.in)
	}
}

// TestSortKeyOrderMatchesOpenLDAP pins the order OpenLDAP 2.5's sssvlv
// produced for these uids (sorted on uid with caseIgnoreOrderingMatch); the
// listing tests check the live server agrees.
func TestSortKeyOrderMatchesOpenLDAP(t *testing.T) {
	want := []string{
		"#hash", "[brack", "^caret", "_under", "`tick", "a b", "a  c", "alice", "Bob", "ǅemal", "ﬁle",
		"İstanbul", "K-kelvin", " lead", "straße", "x,y", "Zed", "Ｚenith", "~tilde", "ß2", "ärger",
		"Å-angstrom", "Émile", "µmicro", "Ωmega", "ωmega2",
	}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortFunc(got, func(a, b string) int { return positionOf(a).compare(positionOf(b)) })
	assert.Equal(t, want, got)
}

func TestEntryPositionTakesSmallestUID(t *testing.T) {
	e := goldap.NewEntry("uid=zed,ou=people,dc=example,dc=com", map[string][]string{"uid": {"zed", "Bob", "carol"}})
	pos, ok := entryPosition(e)
	require.True(t, ok)
	assert.Equal(t, position{value: "Bob", key: "bob"}, pos)
	_, ok = entryPosition(goldap.NewEntry("cn=x,ou=people,dc=example,dc=com", nil))
	assert.False(t, ok)
}

func TestDNKey(t *testing.T) {
	const people = "ou=people,dc=example,dc=com"
	same := [][]string{
		{"uid=alice," + people, "UID=Alice,OU=People,DC=Example,DC=Com", "uid=alice, ou=people, dc=example, dc=com", `uid=\61lice,` + people},
		{`uid=x\,y,` + people, `uid=X\2cY,` + people},
		{"uid=a b," + people, `uid=a\20\20b,` + people, "uid=A  B ," + people},
		{`uid=josé,` + people, `uid=JOSÉ,` + people, `uid=jos\c3\a9,` + people},
		{"uid=a+cn=b," + people, "cn=B+uid=A," + people},
		{"uid=a=b," + people, `uid=a\=b,` + people},
	}
	for _, group := range same {
		for _, dn := range group[1:] {
			assert.Equal(t, dnKey(group[0]), dnKey(dn), "%q and %q name the same entry", group[0], dn)
		}
	}
	different := []string{
		"uid=alice," + people, "uid=alice2," + people, "uid=alice,ou=groups,dc=example,dc=com", `uid=x\,y,` + people,
		"uid=x,y," + people, "uid=a+cn=b," + people, `uid=a\+cn=b,` + people, "cn=nobody", "not a dn",
	}
	keys := map[string]string{}
	for _, dn := range different {
		k := dnKey(dn)
		if other, ok := keys[k]; ok {
			t.Errorf("%q and %q have the same key %q", dn, other, k)
		}
		keys[k] = dn
	}
}

func TestVLVResponseRoundTrip(t *testing.T) {
	// targetPosition 3, contentCount 10, success, contextID, as OpenLDAP sends it.
	raw := []byte{0x30, 0x14, 0x02, 0x01, 0x03, 0x02, 0x01, 0x0a, 0x0a, 0x01, 0x00, 0x04, 0x09, 'c', 'o', 'n', 't', 'e', 'x', 't', 0x00, 0xff}
	r, err := decodeVLVResponse(raw)
	require.NoError(t, err)
	assert.Equal(t, vlvResponse{target: 3, count: 10, context: []byte("context\x00\xff")}, r)

	ctrl := goldap.NewControlString(oidVLVResponse, false, string(raw))
	got, err := sortedResponse([]goldap.Control{ctrl})
	require.NoError(t, err)
	assert.Equal(t, r, got)

	_, err = sortedResponse(nil)
	assert.ErrorIs(t, err, errNoServerSort, "no VLV response: the server did not sort")
	_, err = decodeVLVResponse([]byte{0x30, 0x00})
	assert.ErrorIs(t, err, errNoServerSort)
}

// pipeCursor is a cursor on a connection to nowhere: enough for the store,
// which only closes connections.
func pipeCursor(t *testing.T, id string) *cursor {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { _ = server.Close() })
	conn := goldap.NewConn(client, false)
	conn.Start()
	return &cursor{id: id, conn: conn}
}

func TestCursorStoreEvictsLeastRecentlyUsed(t *testing.T) {
	s := newCursorStore(2, time.Hour)
	defer s.close()
	a, b, c := pipeCursor(t, "a"), pipeCursor(t, "b"), pipeCursor(t, "c")
	now := time.Now()
	s.put(a, now)
	s.put(b, now)
	require.Same(t, a, s.take("a"), "taking a cursor makes it most recently used when put back")
	s.put(a, now)
	s.put(c, now) // full: b is the least recently used
	assert.Nil(t, s.take("b"))
	assert.True(t, b.conn.IsClosing(), "an evicted cursor's connection is closed")
	assert.False(t, a.conn.IsClosing())
	assert.Nil(t, s.take("a"+"x"))
	assert.Nil(t, s.take(""))
	assert.Same(t, a, s.take("a"))
	assert.Nil(t, s.take("a"), "a taken cursor is not shared")
	assert.Equal(t, 1, s.len())

	s.close()
	assert.True(t, c.conn.IsClosing(), "close closes idle cursors")
	s.put(a, now)
	assert.True(t, a.conn.IsClosing(), "a cursor put back after close is closed")
	assert.Equal(t, 0, s.len())
}

func TestCursorStoreClosesIdleCursors(t *testing.T) {
	s := newCursorStore(4, 100*time.Millisecond)
	defer s.close()
	old, fresh := pipeCursor(t, "old"), pipeCursor(t, "fresh")
	s.put(old, time.Now())
	time.Sleep(60 * time.Millisecond)
	s.put(fresh, time.Now())
	require.Eventually(t, old.conn.IsClosing, 2*time.Second, 10*time.Millisecond)
	assert.Nil(t, s.take("old"))
	assert.False(t, fresh.conn.IsClosing(), "a cursor used since is kept")
	require.Eventually(t, fresh.conn.IsClosing, 2*time.Second, 10*time.Millisecond, "the timer re-arms for the next one")
	assert.Equal(t, 0, s.len())
}

func TestCursorStoreKeepsNoneWhenDisabled(t *testing.T) {
	s := newCursorStore(-1, time.Minute)
	defer s.close()
	c := pipeCursor(t, "c")
	s.put(c, time.Now())
	assert.True(t, c.conn.IsClosing())
	assert.Nil(t, s.take("c"))
}
