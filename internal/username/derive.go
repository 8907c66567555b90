package username

import (
	"iter"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// MaxLen is the longest username Derive and Candidates produce, in bytes.
// It leaves room under every target's limit (PostgreSQL allows 63 bytes,
// many SaaS apps 64) for a connector's role prefix.
const MaxLen = 40

// fallbackName is used when neither the names nor the employee ID leave a
// single usable character; the reservation store then adds a number.
const fallbackName = "user"

// Derive returns the username for a person: given and family names
// transliterated to ASCII, lowercased and joined with a dot
// ("José", "Muñoz" → "jose.munoz").
//
// The rules, chosen to give names people recognise and every target accepts:
//   - Accents are stripped (NFKD decomposition, then combining marks are
//     removed); letters that do not decompose use a small table
//     (ß→ss, æ→ae, ø→o, đ→d, ł→l, þ→th, œ→oe, ı→i, ...).
//   - Only a-z and 0-9 are kept. Spaces, apostrophes and every other
//     character vanish ("van Rossum" → "vanrossum", "O'Brien" → "obrien");
//     hyphens inside a name are kept as a single "-"
//     ("Smith-Jones" → "smith-jones").
//   - Letters of other scripts (CJK, Greek, Cyrillic, ...) are dropped, not
//     romanised: romanisation is language-dependent and a wrong guess is
//     worse than an ID. If one part still has Latin letters, the other part
//     is left out ("Zoë", "山田" → "zoe").
//   - When both parts are empty the lowercase employee ID is used
//     ("E100123" → "e100123"), and "user" if even that is empty.
//   - The result is at most MaxLen bytes, cut without leaving a trailing
//     "." or "-".
//
// Derive is deterministic and its result always matches
// ^[a-z0-9][a-z0-9.-]*$.
func Derive(given, family, employeeID string) string {
	var parts []string
	for _, p := range []string{given, family} {
		if s := clean(p); s != "" {
			parts = append(parts, s)
		}
	}
	name := strings.Join(parts, ".")
	if name == "" {
		name = clean(employeeID)
	}
	if name == "" {
		name = fallbackName
	}
	return cut(name, MaxLen)
}

// Candidates yields base, then base2, base3, ... for resolving collisions,
// each at most MaxLen bytes (base is shortened to make room for the number).
// When base, as shortened, ends in a digit (an employee ID), the number
// follows a "-" so "e100123" and "e1001232" are never confused and no
// candidate repeats. The sequence is endless; the caller stops it.
func Candidates(base string) iter.Seq[string] {
	base = cut(base, MaxLen)
	if base == "" {
		base = fallbackName
	}
	return func(yield func(string) bool) {
		if !yield(base) {
			return
		}
		for n := 2; ; n++ {
			num := strconv.Itoa(n)
			// The hyphen goes in whenever the base or its shortened form
			// ends in a digit: "...1b" cut to "...1" plus 2 would read as
			// the 12th candidate, and a full-length "...a10" cut to "...a"
			// plus 10 would be the base again.
			prefix := cut(base, MaxLen-len(num))
			if endsInDigit(base) || endsInDigit(prefix) {
				prefix = cut(base, MaxLen-len(num)-1) + "-"
			}
			c := prefix + num
			if c == base {
				continue // a full-length base ending in "-<n>" cut and rebuilt
			}
			if !yield(c) {
				return
			}
		}
	}
}

func endsInDigit(s string) bool { return s != "" && s[len(s)-1] >= '0' && s[len(s)-1] <= '9' }

// special maps letters that Unicode decomposition leaves alone to their
// conventional ASCII spelling. Lowercase only: input is lowered first.
var special = strings.NewReplacer(
	"ß", "ss", "æ", "ae", "ø", "o", "đ", "d", "ð", "d", "ł", "l", "þ", "th",
	"œ", "oe", "ı", "i", "ħ", "h", "ŧ", "t", "ŋ", "n", "ĸ", "k", "ŀ", "l",
	"ſ", "s", "ƒ", "f", "ǝ", "e", "ə", "e",
)

// clean transliterates one name part and keeps only [a-z0-9] and single
// inner hyphens.
func clean(s string) string {
	// Lowering first lets the table stay lowercase-only (ẞ→ß, Ø→ø, ...).
	s = special.Replace(strings.ToLower(s))
	t := transform.Chain(norm.NFKD, runes.Remove(runes.In(unicode.Mn)))
	if out, _, err := transform.String(t, s); err == nil {
		s = out
	}
	// NFKD can surface uppercase or table letters again (e.g. ligatures).
	s = special.Replace(strings.ToLower(s))

	var b strings.Builder
	hyphen := false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			if hyphen && b.Len() > 0 {
				b.WriteByte('-')
			}
			hyphen = false
			b.WriteRune(r)
		case isHyphen(r):
			hyphen = true
		}
	}
	return b.String()
}

// isHyphen reports whether r joins a double-barrelled name.
func isHyphen(r rune) bool {
	return r == '-' || r == '\u2010' || r == '\u2011' || r == '\u2012' || r == '\u2013' || r == '\u2212'
}

// cut shortens s to at most n bytes (s is ASCII) and trims separators the
// cut left at the end.
func cut(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.TrimRight(s, ".-")
}
