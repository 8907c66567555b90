package username

import (
	"strings"
	"testing"
)

// FuzzCandidates checks the collision sequence for any derived base: it
// starts with the base itself, every candidate is a valid username of at
// most MaxLen bytes, and no candidate repeats, so the reservation store
// always finds a free name and never hands out one twice. Hostile names
// (LDAP and SQL metacharacters, control characters, long inputs) reduce to
// [a-z0-9.-] before they reach any connector.
func FuzzCandidates(f *testing.F) {
	for _, s := range [][3]string{
		{"José", "Muñoz", "E123456"}, {"", "", "E100123"}, {"", "", ""},
		{"*)(uid=*", "x,ou=admins", "E100001"}, {`'; DROP ROLE x; --`, `"`, "E1"},
		{strings.Repeat("a", 39), "b", "E100001"}, {strings.Repeat("a", 38), "9", ""},
		{"\x00\n\x1b", "\xff", "\u202e"}, {"9", "9", "9"}, {strings.Repeat(".", 39) + "a", "", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, given, family, empID string) {
		base := Derive(given, family, empID)
		seen := map[string]bool{}
		n := 0
		for c := range Candidates(base) {
			if n == 0 && c != base {
				t.Fatalf("first candidate of %q is %q", base, c)
			}
			if !validUsername.MatchString(c) || len(c) > MaxLen {
				t.Fatalf("candidate %q of %q is not a valid username", c, base)
			}
			if seen[c] {
				t.Fatalf("candidate %q of %q repeats", c, base)
			}
			seen[c] = true
			if n++; n == 120 {
				break
			}
		}
		// Any base, not only a derived one, yields bounded names without
		// panicking.
		n = 0
		for c := range Candidates(given) {
			if len(c) > MaxLen || c == "" {
				t.Fatalf("candidate %q of raw base %q", c, given)
			}
			if n++; n == 12 {
				break
			}
		}
	})
}
