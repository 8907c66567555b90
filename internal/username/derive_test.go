package username

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

var validUsername = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)

func TestDerive(t *testing.T) {
	tests := []struct {
		name                 string
		given, family, empID string
		want                 string
	}{
		{"accents", "José", "Muñoz", "E100001", "jose.munoz"},
		{"uppercase accents", "JOSÉ", "MUÑOZ", "E100001", "jose.munoz"},
		{"decomposed input", "Jose\u0301", "Mun\u0303oz", "E100001", "jose.munoz"},
		{"particle with space", "Guido", "van Rossum", "E100002", "guido.vanrossum"},
		{"apostrophe", "Conan", "O'Brien", "E100003", "conan.obrien"},
		{"typographic apostrophe", "Conan", "O’Brien", "E100003", "conan.obrien"},
		{"diaeresis", "Zoë", "Saldaña", "E100004", "zoe.saldana"},
		{"sharp s", "Jürgen", "Großmann", "E100005", "jurgen.grossmann"},
		{"capital sharp s", "JÜRGEN", "GROẞMANN", "E100005", "jurgen.grossmann"},
		{"hyphenated family", "Anne", "Smith-Jones", "E100006", "anne.smith-jones"},
		{"hyphenated given", "Jean-Luc", "Picard", "E100007", "jean-luc.picard"},
		{"repeated hyphens collapse", "Jean--Luc", "- Picard -", "E100007", "jean-luc.picard"},
		{"en dash hyphen", "Jean–Luc", "Picard", "E100007", "jean-luc.picard"},
		{"nordic letters", "Søren", "Kierkegård", "E100008", "soren.kierkegard"},
		{"ae ligature", "Ægir", "Æsir", "E100009", "aegir.aesir"},
		{"oe ligature", "Œdipe", "Cœur", "E100010", "oedipe.coeur"},
		{"polish l", "Łukasz", "Wałęsa", "E100011", "lukasz.walesa"},
		{"croatian d", "Đorđe", "Đoković", "E100012", "dorde.dokovic"},
		{"icelandic thorn and eth", "Þór", "Guðmundsson", "E100013", "thor.gudmundsson"},
		{"dotless i", "Işıl", "Yılmaz", "E100014", "isil.yilmaz"},
		{"turkish dotted capital I", "İlkay", "Gündoğan", "E100015", "ilkay.gundogan"},
		{"vietnamese stacked marks", "Nguyễn", "Thị Minh", "E100016", "nguyen.thiminh"},
		{"compatibility forms", "Ｊｏｓｅ", "ﬁnn", "E100017", "jose.finn"},
		{"digits kept", "Anne2", "Smith", "E100018", "anne2.smith"},
		{"only family", "", "Muñoz", "E100019", "munoz"},
		{"only given", "Madonna", "  ", "E100020", "madonna"},
		{"empty after trimming", "  ' - ", "--", "E100123", "e100123"},
		{"CJK falls back", "太郎", "山田", "E100123", "e100123"},
		{"Greek falls back", "Ἀλέξανδρος", "Παπαδόπουλος", "E100124", "e100124"},
		{"Cyrillic falls back", "Иван", "Петров", "E100125", "e100125"},
		{"partly Latin keeps the Latin part", "Zoë", "山田", "E100126", "zoe"},
		{"emoji dropped", "Ana 🚀", "Lima", "E100127", "ana.lima"},
		{"nothing at all", "", "", "", "user"},
		{"employee ID cleaned", "", "", " E-10/01 ", "e-1001"},
		{"sql injection", `Robert'); DROP TABLE students;--`, "x", "E1", "robertdroptablestudents.x"},
		{"quote injection", `x"; DROP ROLE admin; --`, `y`, "E1", "xdroproleadmin.y"},
		{"ldap injection", "*)(uid=*", "cn=admin,dc=example", "E1", "uid.cnadmindcexample"},
		{"path and null", "../../etc/passwd\x00", "a\nb", "E1", "etcpasswd.ab"},
		{"long names cut to max", strings.Repeat("a", 30), strings.Repeat("b", 30), "E1", strings.Repeat("a", 30) + "." + strings.Repeat("b", 9)},
		{"cut leaves no trailing dot", strings.Repeat("a", 40), "bob", "E1", strings.Repeat("a", 40)},
		{"cut leaves no trailing hyphen", strings.Repeat("a", 39) + "-b", "", "E1", strings.Repeat("a", 39)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Derive(tt.given, tt.family, tt.empID)
			assert.Equal(t, tt.want, got)
			assert.Regexp(t, validUsername, got)
			assert.LessOrEqual(t, len(got), MaxLen)
		})
	}
}

func TestCandidates(t *testing.T) {
	tests := []struct {
		name string
		base string
		want []string
	}{
		{"letters get a bare number", "jose.munoz", []string{"jose.munoz", "jose.munoz2", "jose.munoz3", "jose.munoz4"}},
		{"digits get a hyphen", "e100123", []string{"e100123", "e100123-2", "e100123-3", "e100123-4"}},
		{"empty base", "", []string{"user", "user2", "user3", "user4"}},
		{"long base shortened for the number", strings.Repeat("a", 40), []string{strings.Repeat("a", 40), strings.Repeat("a", 39) + "2", strings.Repeat("a", 39) + "3", strings.Repeat("a", 39) + "4"}},
		{"shortening drops a dangling dot", strings.Repeat("a", 38) + ".b", []string{strings.Repeat("a", 38) + ".b", strings.Repeat("a", 38) + "2", strings.Repeat("a", 38) + "3", strings.Repeat("a", 38) + "4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for c := range Candidates(tt.base) {
				got = append(got, c)
				if len(got) == 4 {
					break
				}
			}
			assert.Equal(t, tt.want, got)
		})
	}

	t.Run("many candidates stay valid and distinct", func(t *testing.T) {
		var got []string
		for c := range Candidates(strings.Repeat("z", 40)) {
			assert.Regexp(t, validUsername, c)
			assert.LessOrEqual(t, len(c), MaxLen)
			got = append(got, c)
			if len(got) == 2000 {
				break
			}
		}
		slices.Sort(got)
		assert.Len(t, slices.Compact(got), 2000)
	})
}

func FuzzDerive(f *testing.F) {
	seeds := [][3]string{
		{"José", "Muñoz", "E123456"}, {"", "", ""}, {"山田", "太郎", "E100123"},
		{`x"; DROP ROLE admin; --`, "O'Brien", "E1"}, {"---", "...", "\x00"},
		{strings.Repeat("ß", 50), "Ǆ", "ﬃ"}, {"\xff\xfe", "a\u0301", "-9"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, given, family, empID string) {
		got := Derive(given, family, empID)
		if !validUsername.MatchString(got) {
			t.Fatalf("Derive(%q, %q, %q) = %q: not a valid username", given, family, empID, got)
		}
		if len(got) > MaxLen {
			t.Fatalf("Derive(%q, %q, %q) = %q: %d bytes > %d", given, family, empID, got, len(got), MaxLen)
		}
		if again := Derive(given, family, empID); again != got {
			t.Fatalf("Derive(%q, %q, %q) not deterministic: %q then %q", given, family, empID, got, again)
		}
		n := 0
		for c := range Candidates(got) {
			if !validUsername.MatchString(c) || len(c) > MaxLen {
				t.Fatalf("candidate %q of %q is not a valid username", c, got)
			}
			if n++; n == 3 {
				break
			}
		}
	})
}
