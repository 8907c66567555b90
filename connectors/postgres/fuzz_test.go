package postgres

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// FuzzRoleIdentifier checks that every name validation accepts is quoted
// into an identifier that means exactly that name: wrapped in double quotes,
// every inner quote doubled, nothing dropped (Sanitize silently removes NUL,
// so validation must refuse it).
func FuzzRoleIdentifier(f *testing.F) {
	for _, s := range []string{"a", `x"; DROP ROLE admin; --`, `"`, `""`, "x\x00y", "pg_x", "José", "\xff", strings.Repeat("é", 32), `a"b"c`, "public"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := checkRoleName(s)
		if strings.IndexByte(s, 0) >= 0 && err == nil {
			t.Fatalf("checkRoleName accepted a NUL byte in %q", s)
		}
		if err != nil {
			return
		}
		if len(s) == 0 || len(s) > maxRoleLen {
			t.Fatalf("checkRoleName accepted %q of %d bytes", s, len(s))
		}
		q := pgx.Identifier{s}.Sanitize()
		if q != ident(s) {
			t.Fatalf("ident(%q) = %q, want Sanitize's %q", s, ident(s), q)
		}
		got, ok := unquoteIdent(q)
		if !ok {
			t.Fatalf("Sanitize(%q) = %s is not one well-formed quoted identifier", s, q)
		}
		if got != s {
			t.Fatalf("Sanitize(%q) = %s reads back as %q", s, q, got)
		}
	})
}

// unquoteIdent parses a double-quoted SQL identifier the way PostgreSQL's
// scanner does: it must start and end with a quote, and inside it every
// quote must be doubled. It reports false for anything else, such as a
// quote that would end the identifier early.
func unquoteIdent(q string) (string, bool) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return "", false
	}
	inner := q[1 : len(q)-1]
	var b strings.Builder
	for i := 0; i < len(inner); i++ {
		if inner[i] == '"' {
			if i+1 >= len(inner) || inner[i+1] != '"' {
				return "", false
			}
			i++
		}
		b.WriteByte(inner[i])
	}
	return b.String(), true
}
