package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/provisio-dev/provisio/internal/hr"
)

// FuzzLoad feeds arbitrary bytes to the loader: it must never panic, and
// whatever it accepts must plan without panicking either.
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
	f.Add([]byte("{schema: 1, applications: [{name: x, connector: ldap, owner: E100001, entitlements: [{name: g, risk: low}]}], rules: [{name: r, when: '[1,2].all(x, x > 0)', entitlements: [x/g]}]}"))

	who := person(func(p *hr.Person) { p.Attributes = map[string]string{"cost_center": "42"} })
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			if len(Problems(err)) == 0 {
				t.Fatalf("a refused file must say why: %v", err)
			}
			return
		}
		if p.Version == "" {
			t.Fatal("an accepted policy has a version")
		}
		pl, err := p.Plan(who)
		if err != nil {
			t.Fatalf("a valid person must plan: %v", err)
		}
		p.CheckSoD(pl, nil)
		p.Diff([]Held{{Application: "x", Entitlement: "g"}}, pl)
	})
}
