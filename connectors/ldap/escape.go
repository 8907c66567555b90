package ldap

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"
)

// MaxNameLength is the longest username or entitlement name accepted, in
// characters.
const MaxNameLength = 64

// Reasons validateName refuses a value.
var (
	errEmpty       = errors.New("is empty")
	errTooLong     = errors.New("is longer than 64 characters")
	errNotUTF8     = errors.New("is not valid UTF-8")
	errControlChar = errors.New("contains a control character")
)

// validateName refuses values no directory should hold as a username or
// group name. Everything it lets through is escaped, never rejected, by
// buildDN and buildFilter.
func validateName(s string) error {
	switch {
	case s == "":
		return errEmpty
	case !utf8.ValidString(s):
		// Escaping works on runes; invalid bytes would be rewritten to
		// U+FFFD and name a different entry.
		return errNotUTF8
	case utf8.RuneCountInString(s) > MaxNameLength:
		return errTooLong
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return errControlChar
	}
	return nil
}

// buildDN returns the DN attr=value,parent with value escaped per RFC 4514,
// so no character of value can add an RDN or change the parent. attr and
// parent come from code or configuration, never from requests.
func buildDN(attr, value, parent string) string {
	return attr + "=" + goldap.EscapeDN(value) + "," + parent
}

// buildFilter returns the equality filter (attr=value) with value escaped per
// RFC 4515, so no character of value can widen the match. attr comes from
// code, never from requests.
func buildFilter(attr, value string) string {
	return "(" + attr + "=" + goldap.EscapeFilter(value) + ")"
}

// firstRDN returns the type and value of the first RDN of dn when it has a
// single attribute.
func firstRDN(dn string) (attr, value string, ok bool) {
	parsed, err := goldap.ParseDN(dn)
	if err != nil || len(parsed.RDNs) == 0 || len(parsed.RDNs[0].Attributes) != 1 {
		return "", "", false
	}
	a := parsed.RDNs[0].Attributes[0]
	return a.Type, a.Value, true
}
