package ldap

import (
	"strings"
	"unicode"

	goldap "github.com/go-ldap/ldap/v3"
	"golang.org/x/text/unicode/norm"
)

// matchCaseIgnoreOrdering is caseIgnoreOrderingMatch (RFC 4517 4.2.12), the
// ordering rule listings sort uid by: uid itself has no ORDERING rule.
const matchCaseIgnoreOrdering = "2.5.13.3"

// sortKey returns the key by which listings order a uid value: the value as
// the directory normalises it for caseIgnoreMatch and caseIgnoreOrderingMatch
// (OpenLDAP's UTF8StringNormalize), compared byte-wise as UTF-8. That is:
// ASCII letters lower-cased, every other character lower-cased with the
// Unicode simple mapping and the result put in NFKC, then leading and
// trailing spaces dropped and inner runs of spaces collapsed to one (a value
// of only spaces is one space).
//
// The directory sorts with this key when it can (server-side sorting); the
// scanning fallback sorts with this function. Both must agree or a listing
// that switches between them could skip or repeat accounts, so the steps
// mirror OpenLDAP's exactly; for characters whose case mapping or
// decomposition changed between the Unicode versions of OpenLDAP's tables
// and Go's, the two may differ.
func sortKey(v string) string {
	ascii := true
	for i := 0; i < len(v); i++ {
		if v[i] >= 0x80 {
			ascii = false
			break
		}
	}
	var s string
	if ascii {
		s = strings.Map(func(r rune) rune {
			if 'A' <= r && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return r
		}, v)
	} else {
		s = norm.NFKC.String(strings.Map(unicode.ToLower, v))
	}
	return collapseSpaces(s)
}

// collapseSpaces drops leading and trailing ASCII spaces and collapses
// inner runs to one; a value of only spaces becomes one space, as the
// directory's string normalisation does.
func collapseSpaces(s string) string {
	if !strings.Contains(s, " ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	pending := false
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			pending = b.Len() > 0
			continue
		}
		if pending {
			b.WriteByte(' ')
			pending = false
		}
		b.WriteByte(s[i])
	}
	if b.Len() == 0 {
		return " "
	}
	return b.String()
}

// position is where an entry sits in a listing: its sort value (the uid
// value the order is taken from) and that value's sortKey.
type position struct {
	value, key string
}

func positionOf(value string) position { return position{value: value, key: sortKey(value)} }

// compare orders positions by key, then by value so that the order is total
// even if two values normalise alike (which the directory prevents for the
// naming uid of entries under one parent).
func (p position) compare(q position) int {
	if c := strings.Compare(p.key, q.key); c != 0 {
		return c
	}
	return strings.Compare(p.value, q.value)
}

// entryPosition returns where e sorts: by its smallest uid value, as RFC 2891
// asks of a multi-valued sort attribute. ok is false without a uid.
func entryPosition(e *goldap.Entry) (position, bool) {
	values := e.GetAttributeValues(attrUID)
	if len(values) == 0 {
		return position{}, false
	}
	best := positionOf(values[0])
	for _, v := range values[1:] {
		if p := positionOf(v); p.compare(best) < 0 {
			best = p
		}
	}
	return best, true
}
