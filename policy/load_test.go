package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const demoPolicy = "../deployments/demo/policy.yaml"

func TestDemoPolicyLoads(t *testing.T) {
	p, err := Load(demoPolicy)
	require.NoError(t, err)
	data, err := os.ReadFile(demoPolicy)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	assert.Equal(t, hex.EncodeToString(sum[:]), p.Version, "version is the SHA-256 of the file")
	assert.Equal(t, demoPolicy, p.Source)

	// What the issue asks the example to show.
	prod := p.Entitlement(Ref{"postgres", "prod_admin"})
	require.NotNil(t, prod)
	assert.True(t, prod.Temporary.Only, "one temporary-only entitlement")
	assert.Equal(t, 8*time.Hour, prod.Temporary.MaxDuration)
	fa := p.Entitlement(Ref{"scim", "finance-admins"})
	require.NotNil(t, fa)
	assert.Equal(t, RequireOwner, fa.Approval.Require, "one owner-approved entitlement")
	assert.NotEmpty(t, p.SoD, "at least one SoD set")
	assert.Equal(t, 90*Day, p.Retention("ldap"))
	assert.Equal(t, 30*Day, p.Retention("postgres"))
	assert.Equal(t, "LDAP_BIND_PASSWORD", p.Application("ldap").Settings["bind_password_env"])
	for _, a := range p.Applications {
		assert.Contains(t, []string{"ldap", "postgres", "scim"}, a.Connector)
	}
}

// wantAtRe reads a standalone expectation for a line that cannot carry a
// comment (inside a block scalar): "# want at LINE: text".
var wantAtRe = regexp.MustCompile(`^\s*# want at (\d+): (.*)$`)

type want struct {
	line int
	text string
}

// readWants reads the expectations of a testdata/bad file: a trailing
// "# want: text" means a problem on that line contains text; several may
// follow each other on one line.
func readWants(data []byte) []want {
	var wants []want
	for i, l := range strings.Split(string(data), "\n") {
		if m := wantAtRe.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			wants = append(wants, want{n, m[2]})
			continue
		}
		parts := strings.Split(l, "# want: ")
		for _, p := range parts[1:] {
			wants = append(wants, want{i + 1, strings.TrimSpace(p)})
		}
	}
	return wants
}

// TestBadPolicies checks that each broken file in testdata/bad reports the
// expected problems, each at its line, and nothing else.
func TestBadPolicies(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			wants := readWants(data)
			require.NotEmpty(t, wants, "file declares no # want comments")

			p, err := Parse(f, data)
			require.Error(t, err)
			assert.Nil(t, p)
			var pe *Error
			require.True(t, errors.As(err, &pe), "error is an *Error: %v", err)
			matches := func(p Problem, w want) bool {
				return p.Line == w.line && strings.Contains(p.Message+"; "+p.Fix, w.text)
			}
			for _, w := range wants {
				assert.True(t, slices.ContainsFunc(pe.Problems, func(p Problem) bool { return matches(p, w) }),
					"want a problem at line %d containing %q; got:\n%v", w.line, w.text, err)
			}
			for _, p := range pe.Problems {
				assert.True(t, slices.ContainsFunc(wants, func(w want) bool { return matches(p, w) }),
					"unexpected problem %s", p.Format(f))
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				assert.Regexp(t, `^`+regexp.QuoteMeta(f)+`:\d+: .+; .+`, line, "file:line: what; how to fix")
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "72h", want: 72 * time.Hour},
		{in: "90m", want: 90 * time.Minute},
		{in: "3d", want: 3 * Day},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "0d", want: 0},
		{in: "0s", want: 0},
		{in: "0", want: 0},
		{in: " 7d ", want: 7 * Day},
		{in: "", wantErr: "empty"},
		{in: "3", wantErr: "no unit"},
		{in: "-1d", wantErr: "negative"},
		{in: "-5h", wantErr: "negative"},
		{in: "1d-5h", wantErr: "unexpected \"-\" after the days"},
		{in: "1d+5h", wantErr: "unexpected"},
		{in: "3 days", wantErr: "want e.g."},
		{in: "1dx", wantErr: "want days then a Go duration"},
		{in: "d", wantErr: "want e.g."},
		{in: "1.5d", wantErr: "want e.g."},
		{in: "100001d", wantErr: "too many days"},
		{in: "99999999999999999999d", wantErr: "too many days"},
		{in: "1w", wantErr: "want e.g."},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{3 * Day, "3d"},
		{36 * time.Hour, "1d12h"},
		{8 * time.Hour, "8h"},
		{90 * time.Minute, "1h30m"},
		{10 * time.Second, "10s"},
		{Day + 10*time.Second, "1d10s"},
		{1500 * time.Millisecond, "1.5s"},
		{3650 * Day, "3650d"},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, FormatDuration(tc.in))
		if tc.in > 0 {
			back, err := ParseDuration(FormatDuration(tc.in))
			require.NoError(t, err)
			assert.Equal(t, tc.in, back, "round trip of %s", tc.want)
		}
	}
}

func TestParseRef(t *testing.T) {
	for _, ok := range []string{"ldap/vpn", "postgres/prod_admin", "scim/finance-admins"} {
		r, err := ParseRef(ok)
		require.NoError(t, err)
		assert.Equal(t, ok, r.String())
	}
	for _, bad := range []string{"", "ldap", "/vpn", "ldap/", "a/b/c"} {
		_, err := ParseRef(bad)
		assert.Error(t, err, bad)
	}
}

// minimal is the smallest valid policy; tests add to it.
const minimal = `schema: 1
applications:
  - name: ldap
    connector: ldap
    owner: E100001
    entitlements:
      - {name: g, risk: low}
`

func TestParseDefaultsAndForms(t *testing.T) {
	p := mustParse(t, minimal)
	e := p.Entitlement(Ref{"ldap", "g"})
	require.NotNil(t, e)
	assert.Equal(t, Approval{Require: RequireNone, EscalateAfter: 3 * Day, ExpireAfter: 7 * Day}, e.Approval, "built-in approval defaults")
	assert.Equal(t, Temporary{MaxDuration: 90 * Day, RemindBefore: 7 * Day, ExtensionNeedsApproval: true}, e.Temporary, "built-in temporary defaults")
	assert.Equal(t, 30*Day, p.Retention("ldap"))
	assert.Equal(t, FallbackFlag, p.DisableFallback("ldap"), "built-in disable fallback")
	assert.Equal(t, FallbackFlag, p.DisableFallback("unknown"), "unknown applications are flagged, never deleted")
	assert.Empty(t, p.FallbackApprover, "not needed without approvals")

	p = mustParse(t, `schema: 1
fallback_approver: E100000
defaults:
  approval: {escalate_after: 1d, expire_after: 2d}
  temporary: {max_duration: 30d, extension_needs_approval: false}
  leaver: {retention: 0d, disable_fallback: delete}
applications:
  - name: saas
    connector: scim
    owner: E100001
    leaver: {disable_fallback: flag}
    entitlements: [{name: g, risk: low}]
  - name: ldap
    connector: ldap
    owner: E100001
    settings:
      url: ldap://127.0.0.1:3389
      token_url: https://idp.example.com/token
      password_file: /run/secrets/ldap
      port: 3389
      start_tls: true
    entitlements:
      - {name: short, risk: low, approval: manager}
      - name: long
        risk: high
        approval: {require: manager_then_owner, expire_after: 36h}
      - name: tmp
        risk: medium
        temporary: {only: true, max_duration: 2h}
`)
	short := p.Entitlement(Ref{"ldap", "short"})
	assert.Equal(t, Approval{Require: RequireManager, EscalateAfter: Day, ExpireAfter: 2 * Day}, short.Approval, "file defaults")
	long := p.Entitlement(Ref{"ldap", "long"})
	assert.Equal(t, Approval{Require: RequireManagerThenOwn, EscalateAfter: Day, ExpireAfter: 36 * time.Hour}, long.Approval)
	tmp := p.Entitlement(Ref{"ldap", "tmp"})
	assert.Equal(t, Temporary{Only: true, MaxDuration: 2 * time.Hour, RemindBefore: 30 * time.Minute}, tmp.Temporary,
		"a default reminder longer than the grant is shortened to a quarter")
	assert.Equal(t, 30*Day, short.Temporary.MaxDuration)
	assert.Equal(t, time.Duration(0), p.Retention("ldap"), "retention 0 deletes at once")
	assert.Equal(t, FallbackDelete, p.DisableFallback("ldap"), "the file's default")
	assert.Equal(t, FallbackFlag, p.DisableFallback("saas"), "the application's own")
	assert.Equal(t, map[string]string{
		"url": "ldap://127.0.0.1:3389", "token_url": "https://idp.example.com/token",
		"password_file": "/run/secrets/ldap", "port": "3389", "start_tls": "true",
	}, p.Application("ldap").Settings)
}

func TestVersionFollowsContent(t *testing.T) {
	a := mustParse(t, minimal)
	b := mustParse(t, minimal+"# a comment changes the file, so the version\n")
	assert.Len(t, a.Version, 64)
	assert.NotEqual(t, a.Version, b.Version)
	assert.Equal(t, a.Version, mustParse(t, minimal).Version)
}

func TestErrorFormat(t *testing.T) {
	_, err := Parse("p.yaml", []byte(minimal+"      - {name: h, risk: low}\nroles:\n  - {name: r, entitlements: [ldap/x]}\n"))
	require.Error(t, err)
	assert.Equal(t, `p.yaml:10: roles[r]: application "ldap" has no entitlement "x"; known entitlements: g, h (or declare it under applications[ldap].entitlements)`, err.Error())
	require.Len(t, Problems(err), 1)
	assert.Equal(t, 10, Problems(err)[0].Line)
	assert.Equal(t, 30, Problems(err)[0].Column)
	assert.Nil(t, Problems(errors.New("other")))

	_, err = Load("testdata/does-not-exist.yaml")
	assert.ErrorContains(t, err, "read policy")
	assert.Nil(t, Problems(err))
}

func TestOversizedFile(t *testing.T) {
	big := minimal + "# " + strings.Repeat("x", MaxPolicyBytes) + "\n"
	_, err := Parse("big.yaml", []byte(big))
	assert.ErrorContains(t, err, "larger than")
}

func TestRoleHierarchyBound(t *testing.T) {
	// Each level includes the previous one twice over two roles: 2^n paths.
	var b strings.Builder
	b.WriteString(minimal + "roles:\n  - {name: r0a, entitlements: [ldap/g]}\n  - {name: r0b, entitlements: [ldap/g]}\n")
	for i := 1; i <= 10; i++ {
		for _, s := range []string{"a", "b"} {
			b.WriteString("  - {name: r" + strconv.Itoa(i) + s + ", includes: [r" + strconv.Itoa(i-1) + "a, r" + strconv.Itoa(i-1) + "b]}\n")
		}
	}
	_, err := Parse("deep.yaml", []byte(b.String()))
	assert.ErrorContains(t, err, "through more than 256 paths")
}
