package policy

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestApplicationIgnored(t *testing.T) {
	src := `schema: 1
applications:
  - name: ldap
    connector: ldap
    owner: E100001
    reconciliation:
      ignore: [svc-*, backup-agent, "ops-?"]
    entitlements: [{name: g, risk: low}]
  - name: db
    connector: postgres
    owner: E100001
    entitlements: [{name: r, risk: low}]
`
	p, err := Parse("ignore.yaml", []byte(src))
	require.NoError(t, err)
	ldap := p.Application("ldap")
	assert.Equal(t, []string{"svc-*", "backup-agent", "ops-?"}, ldap.Ignore, "patterns in file order")
	tests := []struct {
		username, wantPattern string
		wantOK                bool
	}{
		{"svc-build", "svc-*", true},
		{"svc-", "svc-*", true},
		{"backup-agent", "backup-agent", true},
		{"ops-1", "ops-?", true},
		{"ops-12", "", false},
		{"backup-agent2", "", false},
		{"anna.svc-x", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.username, func(t *testing.T) {
			pat, ok := ldap.Ignored(tc.username)
			assert.Equal(t, tc.wantOK, ok)
			assert.Equal(t, tc.wantPattern, pat)
		})
	}
	pat, ok := p.Application("db").Ignored("svc-build")
	assert.False(t, ok, "an application without a reconciliation section ignores nothing")
	assert.Empty(t, pat)
}

func TestDemoPolicyIgnoresServiceAccounts(t *testing.T) {
	p, err := Load(demoPolicy)
	require.NoError(t, err)
	_, ok := p.Application("ldap").Ignored("svc-backup")
	assert.True(t, ok, "the demo policy leaves LDAP service accounts alone")
	_, ok = p.Application("ldap").Ignored("anna.schmidt")
	assert.False(t, ok)
}
