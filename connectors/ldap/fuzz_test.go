package ldap

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"

	"github.com/provisio-dev/provisio/connectors"
)

// hostileNames are values a username or group name may carry that mean
// something to LDAP: DN separators, filter metacharacters, escapes and
// spellings directories normalise.
var hostileNames = []string{
	"alice", "*", "*)(uid=*", ")(|(uid=*", "x,ou=admins", "x+cn=admin", `x\2a`, `\`, "#x", " x ", "a  b",
	`"quoted"`, "<x>", "x;y", "x=y", "ALICE", "josé", "JOSÉ", "ﬁ", "山田", "x\u202e", "\u00a0x",
}

// FuzzGroupFilters checks the composite filters the connector sends with
// user-controlled values inside: the page's group search,
// (&(objectClass=groupOfNames)(|(member=DN1)(member=DN2))), and the group
// lookup by name, (&(objectClass=groupOfNames)(cn=NAME)). Each must
// compile to exactly that structure with the values unchanged, so no name
// can widen or escape the search.
func FuzzGroupFilters(f *testing.F) {
	for i, s := range hostileNames {
		f.Add(s, hostileNames[(i+1)%len(hostileNames)])
	}
	f.Fuzz(func(t *testing.T, u1, u2 string) {
		if validateName(u1) != nil || validateName(u2) != nil {
			return // refused before any filter is built
		}
		dn1, dn2 := buildDN(attrUID, u1, testParent), buildDN(attrUID, u2, testParent)
		members := "(&(objectClass=groupOfNames)(|" + buildFilter(attrMember, dn1) + buildFilter(attrMember, dn2) + "))"
		want := filterAnd(filterEq("objectClass", "groupOfNames"),
			filterNode(goldap.FilterOr, "Or", filterEq(attrMember, dn1), filterEq(attrMember, dn2)))
		compileTo(t, members, want)

		byName := "(&(objectClass=groupOfNames)" + buildFilter(attrCN, u1) + ")"
		compileTo(t, byName, filterAnd(filterEq("objectClass", "groupOfNames"), filterEq(attrCN, u1)))
	})
}

// FuzzDNKey checks dnKey, which matches a group's member values to a page's
// accounts: two usernames get the same key exactly when the directory
// treats them as the same uid (sortKey: case and inner spaces folded), and
// a DN spelled another valid way (every value byte hex-escaped, attribute
// types in upper case) keeps its key, so a member is never credited to
// the wrong account nor lost.
func FuzzDNKey(f *testing.F) {
	for i, s := range hostileNames {
		f.Add(s, hostileNames[(i+3)%len(hostileNames)])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if validateName(a) != nil || validateName(b) != nil {
			return
		}
		ka, kb := dnKey(buildDN(attrUID, a, testParent)), dnKey(buildDN(attrUID, b, testParent))
		if same := sortKey(a) == sortKey(b); (ka == kb) != same {
			t.Fatalf("dnKey(%q) = %q, dnKey(%q) = %q; same uid to the directory: %v", a, ka, b, kb, same)
		}
		var hex strings.Builder
		for i := 0; i < len(a); i++ {
			fmt.Fprintf(&hex, `\%02x`, a[i])
		}
		respelled := "UID=" + hex.String() + "," + strings.ToUpper(testParent)
		if got := dnKey(respelled); got != ka {
			t.Fatalf("dnKey(%q) = %q, but the same DN spelled %q has key %q", buildDN(attrUID, a, testParent), ka, respelled, got)
		}
	})
}

// FuzzDecodePageToken feeds arbitrary tokens (they come from API callers)
// to decodeToken: it must never panic, refuse with KindInvalid, and what it
// accepts must encode to a token that decodes to the same position, with a
// cursor ID of hex digits only and a bounded sort value.
func FuzzDecodePageToken(f *testing.F) {
	for _, tok := range []string{
		"", "!!!", encodeToken("", "alice"), encodeToken("0123abcd", "x,ou=groups"), encodeToken("", "*)(uid=*"),
		encodeToken("ABC", "x"), encodeToken("", ""), encodeToken("", strings.Repeat("x", maxTokenValue+1)),
		encodeToken("", "a\xffb"), encodeToken("1", "a:b:c"), encodeToken("", "\x00"), "dTI6OmE=", "dTI6OmE",
	} {
		f.Add(tok)
	}
	f.Fuzz(func(t *testing.T, token string) {
		tok, err := decodeToken(token)
		if err != nil {
			if connectors.KindOf(err) != connectors.KindInvalid {
				t.Fatalf("decodeToken(%q): %v is not KindInvalid", token, err)
			}
			return
		}
		if token == "" {
			if tok != (pageToken{}) {
				t.Fatalf("the empty token decodes to %+v", tok)
			}
			return
		}
		if tok.after == "" || len(tok.after) > maxTokenValue || strings.Trim(tok.cursor, "0123456789abcdef") != "" {
			t.Fatalf("decodeToken(%q) accepted %+v", token, tok)
		}
		back, err := decodeToken(encodeToken(tok.cursor, tok.after))
		if err != nil || back != tok {
			t.Fatalf("token %+v does not survive a round trip: %+v, %v", tok, back, err)
		}
	})
}

// compileTo asserts that filter compiles to the BER packet want.
func compileTo(t *testing.T, filter string, want *ber.Packet) {
	t.Helper()
	got, err := goldap.CompileFilter(filter)
	if err != nil {
		t.Fatalf("filter %q does not compile: %v", filter, err)
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("filter %q compiles to %x, want %x", filter, got.Bytes(), want.Bytes())
	}
}

func filterEq(attr, value string) *ber.Packet {
	p := ber.Encode(ber.ClassContext, ber.TypeConstructed, goldap.FilterEqualityMatch, nil, "Equality Match")
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, attr, "Attribute"))
	p.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, value, "Condition"))
	return p
}

func filterAnd(children ...*ber.Packet) *ber.Packet {
	return filterNode(goldap.FilterAnd, "And", children...)
}

func filterNode(tag ber.Tag, desc string, children ...*ber.Packet) *ber.Packet {
	p := ber.Encode(ber.ClassContext, ber.TypeConstructed, tag, nil, desc)
	for _, c := range children {
		p.AppendChild(c)
	}
	return p
}
