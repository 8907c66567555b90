package policy

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/provisio-dev/provisio/internal/hr"
)

// FuzzLoad feeds arbitrary bytes to the loader. It must never panic (nor
// reach Parse's last-resort recover); every problem it reports names a line
// of the file (only a file over MaxPolicyBytes is refused as a whole);
// parsing is deterministic; whatever it accepts must plan, deterministically,
// even for a person whose fields hold CEL, SQL or LDAP syntax, which is data
// and never code.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/bad/*.yaml")
	seeds = append(seeds, demoPolicy)
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(testPolicy))
	f.Add([]byte(minimal))
	f.Add([]byte("a: &a [*a]"))
	f.Add([]byte("schema: 1\napplications: !!binary aGVsbG8=\n"))
	f.Add([]byte(minimal + "rules:\n  - name: r\n    when: 'person.department == \"\" || true || \"\"'\n    entitlements: [ldap/g]\n"))
	f.Add([]byte(minimal + "rules:\n  - name: r\n    when: |\n      person.attributes[\"cost_center\"] == \"42\" &&\n      person.title.matches(\"(a+)+$\")\n    entitlements: [ldap/g]\n"))
	f.Add([]byte(minimal + "rules:\n  - name: r\n    when: \"\\x00\"\n    entitlements: [ldap/g]\n"))
	f.Add([]byte("schema: 1\napplications:\n  - name: \"ldap\\u0000\"\n    connector: ldap\n"))
	f.Add([]byte("\ufeffschema: 1\r\napplications: []\r\n"))
	f.Add([]byte("schema: 1\n\x00\x01\x02: x\n"))
	f.Add([]byte("schema: 1\napplications:\n\t- name: x\n"))
	f.Add([]byte("schema: \xff\xfe\n"))
	f.Add([]byte("a: [" + strings.Repeat("[", 10000)))
	f.Add([]byte("{schema: 1, applications: [{name: x, connector: ldap, owner: E100001, entitlements: [{name: g, risk: low}]}], rules: [{name: r, when: '[1,2].all(x, x > 0)', entitlements: [x/g]}]}"))

	who := person(func(p *hr.Person) { p.Attributes = map[string]string{"cost_center": "42"} })
	hostile := person(func(p *hr.Person) {
		p.GivenName, p.FamilyName = `" || true || "`, "*)(uid=*"
		p.Department, p.Title = "'; DROP ROLE admin; --", `person.department == "Engineering"`
		p.Attributes = map[string]string{"cost_center": `42" || "1" == "1`, "x": "${env:PATH}"}
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			probs := Problems(err)
			if len(probs) == 0 {
				t.Fatalf("a refused file must say why: %v", err)
			}
			lines := strings.Count(string(data), "\n") + 1
			for _, pr := range probs {
				if strings.HasPrefix(pr.Message, "cannot read the file") {
					t.Fatalf("the loader panicked: %s", pr.Message)
				}
				if pr.Line == 0 && len(data) <= MaxPolicyBytes {
					t.Fatalf("problem names no line: %s", pr.Format("fuzz.yaml"))
				}
				if pr.Line < 0 || pr.Line > lines+1 {
					t.Fatalf("problem names line %d of a %d-line file: %s", pr.Line, lines, pr.Format("fuzz.yaml"))
				}
			}
			if _, again := Parse("fuzz.yaml", data); !reflect.DeepEqual(probs, Problems(again)) {
				t.Fatalf("two parses of one file disagree:\n%v\n%v", err, again)
			}
			return
		}
		if p.Version == "" {
			t.Fatal("an accepted policy has a version")
		}
		for _, who := range []hr.Person{who, hostile} {
			pl, err := p.Plan(who)
			if err != nil {
				t.Fatalf("a valid person must plan: %v", err)
			}
			again, err := p.Plan(who)
			if err != nil || !reflect.DeepEqual(pl, again) {
				t.Fatalf("two plans of one person disagree: %v", err)
			}
			p.CheckSoD(pl, nil)
			p.Diff([]Held{{Application: "x", Entitlement: "g"}}, pl)
		}
	})
}

// TestUnreadableYAMLNamesTheLine pins what FuzzLoad found: yaml.v3 prints
// no line for bytes it cannot read as YAML text, nor for any error on the
// first line; the loader names the line itself.
func TestUnreadableYAMLNamesTheLine(t *testing.T) {
	tests := []struct {
		name string
		data string
		line int
	}{
		{"NUL", "schema: 1\napplications:\n  - name: x\x00\n", 3},
		{"Latin-1", "schema: 1\n# caf\xe9\n", 2},
		{"escape", "schema: 1\napplications: []\nrules: \x1b[2J\n", 3},
		{"too deep on line one", "a: [" + strings.Repeat("[", 10001), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(tt.data))
			probs := Problems(err)
			if len(probs) != 1 || probs[0].Line != tt.line {
				t.Fatalf("want one problem at line %d, got %v", tt.line, err)
			}
		})
	}
}
