package postgres

import (
	"strings"
	"testing"
	"unicode/utf8"

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

// FuzzQuoteLiteral checks the one value not sent as a parameter (COMMENT
// ON takes none): for any text (no NUL, which no text value holds),
// quoteLiteral builds a single escape-string literal that PostgreSQL's
// scanner reads back as exactly that text, ending where the literal ends,
// so nothing after it can run as SQL.
func FuzzQuoteLiteral(f *testing.F) {
	for _, s := range []string{"", "'", "''", `\`, `\'`, `'\`, `\\'; DROP ROLE x; --`, "E'x'", "$$", `\x41`, `\101`, `\u0041`,
		"provisio:{\"a\":\"b\\\"c\"}", "José 山田 🚀", "a\nb\tc", "\u2028", "\xc0\x27", "\xff'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return // the connection is UTF-8 and text holds no NUL: checkMarker and the server refuse these first
		}
		lit := quoteLiteral(s)
		got, rest, ok := scanEscapeString(lit)
		if !ok {
			t.Fatalf("quoteLiteral(%q) = %s is not one well-formed escape string", s, lit)
		}
		if rest != "" {
			t.Fatalf("quoteLiteral(%q) = %s ends early; %q follows it", s, lit, rest)
		}
		if got != s {
			t.Fatalf("quoteLiteral(%q) = %s reads back as %q", s, lit, got)
		}
	})
}

// FuzzMarker checks the role comment that marks a managed role: for
// attributes checkMarker accepts, the comment holds no NUL (quoteLiteral's
// precondition) and reads back as the same attributes; any comment,
// however damaged, parses without panicking.
func FuzzMarker(f *testing.F) {
	f.Add("E100001", "Ada", "O'Brien", "Ada O'Brien", "ada@example.com")
	f.Add("E100001", "\x00", "\x1b[2J", `"},"employee_id":"E999999`, "a@b\\c")
	f.Add(" ", "\xff", "", "", "")
	f.Add("E100001", strings.Repeat("x", maxAttrLen+1), "", "", "")
	f.Add("E100001", "<script>", "'; DROP ROLE x; --", "\u2028", "山田")
	f.Fuzz(func(t *testing.T, id, given, family, display, email string) {
		m := marker{EmployeeID: id, GivenName: given, FamilyName: family, DisplayName: display, Email: email}
		_, _ = parseComment(markerPrefix + given) // hostile comments on roles provisio does not own
		if checkMarker(m) != nil {
			return
		}
		c := m.comment()
		if strings.IndexByte(c, 0) >= 0 {
			t.Fatalf("comment of %+v holds a NUL byte", m)
		}
		got, managed := parseComment(c)
		if !managed || got != m {
			t.Fatalf("comment %q reads back as %+v (managed %v), want %+v", c, got, managed, m)
		}
	})
}

// FuzzPageToken feeds arbitrary page tokens (they come from API callers)
// to decodePageToken: it never panics, accepts only role names
// checkRoleName accepts, and round-trips what it accepts.
func FuzzPageToken(f *testing.F) {
	for _, s := range []string{"", "!!!", encodePageToken("a"), encodePageToken(`x"; DROP ROLE admin; --`), encodePageToken("pg_signal_backend"),
		encodePageToken("x\x00"), encodePageToken(strings.Repeat("a", 64)), "djE6", "djE6YQ", "djE6YR"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		role, err := decodePageToken(token)
		if err != nil || token == "" {
			return
		}
		if err := checkRoleName(role); err != nil {
			t.Fatalf("decodePageToken(%q) accepted role %q: %v", token, role, err)
		}
		if back, err := decodePageToken(encodePageToken(role)); err != nil || back != role {
			t.Fatalf("role %q does not survive a round trip: %q, %v", role, back, err)
		}
	})
}

// FuzzPrefixUpperBound checks the keyset range ListAccounts uses instead of
// starts_with: with upper from prefixUpperBound, a name starts with prefix
// exactly when prefix <= name < upper (byte order, as rolname's "C"
// collation), so a page never misses a managed role nor shows another.
func FuzzPrefixUpperBound(f *testing.F) {
	for _, s := range [][2]string{{"u_", "u_alice"}, {"u_", "u`"}, {"u_", "u_"}, {"a\xff", "b"}, {"\xff", "\xff\xff"}, {"", "x"}, {"bench_", "bench`x"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, prefix, name string) {
		upper, ok := prefixUpperBound(prefix)
		inRange := name >= prefix && (!ok || name < upper)
		if inRange != strings.HasPrefix(name, prefix) {
			t.Fatalf("prefix %q, upper %q (%v): %q in range %v, has prefix %v", prefix, upper, ok, name, inRange, !inRange)
		}
	})
}

// scanEscapeString reads one E'...' literal at the start of s the way
// PostgreSQL's scanner does (backslash escapes, doubled quotes) and returns
// its value and what follows it.
func scanEscapeString(s string) (value, rest string, ok bool) {
	if !strings.HasPrefix(s, "E'") {
		return "", "", false
	}
	var b strings.Builder
	for i := 2; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			if i+1 < len(s) && s[i+1] == '\'' {
				b.WriteByte('\'')
				i++
				continue
			}
			return b.String(), s[i+1:], true
		case '\\':
			if i+1 >= len(s) {
				return "", "", false
			}
			i++
			switch e := s[i]; e {
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case '0', '1', '2', '3', '4', '5', '6', '7', 'x', 'u', 'U':
				// Octal, hex and Unicode escapes: quoteLiteral never
				// writes one, so meeting one means a backslash of the
				// value was left unescaped.
				return "", "", false
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}
