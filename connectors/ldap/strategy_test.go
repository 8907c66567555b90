package ldap

import (
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/assert"
)

// TestDisableStrategies checks the modifies each strategy builds; only
// ppolicy runs against a real server in this repository.
func TestDisableStrategies(t *testing.T) {
	const dn = "uid=a," + testParent
	entry := func(attr, v string) *goldap.Entry {
		if v == "" {
			return goldap.NewEntry(dn, nil)
		}
		return goldap.NewEntry(dn, map[string][]string{attr: {v}})
	}
	type change struct {
		op     string
		attr   string
		values []string
	}
	changes := func(m *goldap.ModifyRequest) []change {
		var out []change
		for _, c := range m.Changes {
			op := map[uint]string{goldap.AddAttribute: "add", goldap.DeleteAttribute: "delete", goldap.ReplaceAttribute: "replace"}[c.Operation]
			out = append(out, change{op, c.Modification.Type, c.Modification.Vals})
		}
		return out
	}
	tests := []struct {
		name         string
		strategy     DisableStrategy
		entry        *goldap.Entry
		wantDisabled bool
		disable      bool
		want         []change
	}{
		{"ppolicy lock", StrategyPPolicy, entry(attrLockedTime, ""), false, true,
			[]change{{"replace", attrLockedTime, []string{lockedForever}}}},
		{"ppolicy temporary lockout is not disabled", StrategyPPolicy, entry(attrLockedTime, "20260101000000Z"), false, true,
			[]change{{"replace", attrLockedTime, []string{lockedForever}}}},
		{"ppolicy unlock removes only the permanent lock", StrategyPPolicy, entry(attrLockedTime, lockedForever), true, false,
			[]change{{"delete", attrLockedTime, []string{lockedForever}}}},
		{"ad disable swaps the exact value", StrategyAD, entry(attrUAC, "512"), false, true,
			[]change{{"delete", attrUAC, []string{"512"}}, {"add", attrUAC, []string{"514"}}}},
		{"ad enable keeps other bits", StrategyAD, entry(attrUAC, "66050"), true, false,
			[]change{{"delete", attrUAC, []string{"66050"}}, {"add", attrUAC, []string{"66048"}}}},
		{"ad without the attribute", StrategyAD, entry(attrUAC, ""), false, true,
			[]change{{"replace", attrUAC, []string{"2"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{cfg: Config{DisableStrategy: tt.strategy}.withDefaults()}
			assert.Equal(t, tt.wantDisabled, c.isDisabled(tt.entry))
			assert.Equal(t, tt.want, changes(c.stateChange(dn, tt.entry, tt.disable)))
		})
	}
}
