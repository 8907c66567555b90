package ldap

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
)

const testParent = "ou=people,dc=example,dc=com"

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"plain", "alice", nil},
		{"dn specials are escaped, not refused", `x,ou=groups+cn=admin;"<>\#=`, nil},
		{"filter specials are escaped, not refused", "*)(uid=*", nil},
		{"non-ASCII", "josé 山田", nil},
		{"spaces", " a  b ", nil},
		{"64 characters", strings.Repeat("é", 64), nil},
		{"empty", "", errEmpty},
		{"65 characters", strings.Repeat("a", 65), errTooLong},
		{"NUL", "x\x00y", errControlChar},
		{"newline", "x\ny", errControlChar},
		{"DEL", "x\x7f", errControlChar},
		{"C1 control", "x\u0085", errControlChar},
		{"invalid UTF-8", "x\xffy", errNotUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, validateName(tt.in), tt.want)
		})
	}
}

func TestBuildDN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice", "uid=alice," + testParent},
		{"x,ou=groups", `uid=x\,ou=groups,` + testParent},
		{"x+cn=admin", `uid=x\+cn=admin,` + testParent},
		{`x\`, `uid=x\\,` + testParent},
		{" x ", `uid=\ x\ ,` + testParent},
		{"#x", `uid=\#x,` + testParent},
		{"x\x00", `uid=x\00,` + testParent},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			assert.Equal(t, tt.want, buildDN("uid", tt.in, testParent))
			checkDN(t, tt.in)
		})
	}
}

func TestBuildFilter(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice", "(uid=alice)"},
		{"*", `(uid=\2a)`},
		{"*)(uid=*", `(uid=\2a\29\28uid=\2a)`},
		{`x\`, `(uid=x\5c)`},
		{"x\x00", `(uid=x\00)`},
		{"é", `(uid=\c3\a9)`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			assert.Equal(t, tt.want, buildFilter("uid", tt.in))
			checkFilter(t, tt.in)
		})
	}
}

// checkDN asserts the fuzz property of buildDN: the DN parses, has exactly
// one more RDN than the parent, and its first RDN is uid with value v.
func checkDN(t *testing.T, v string) {
	t.Helper()
	dn := buildDN("uid", v, testParent)
	if !utf8.ValidString(v) {
		// validateName refuses these before buildDN is ever called:
		// escaping works on runes and cannot keep invalid bytes.
		return
	}
	parsed, err := goldap.ParseDN(dn)
	if err != nil {
		t.Fatalf("buildDN(%q) = %q does not parse: %v", v, dn, err)
	}
	parent, err := goldap.ParseDN(testParent)
	require.NoError(t, err)
	if len(parsed.RDNs) != len(parent.RDNs)+1 {
		t.Fatalf("buildDN(%q) = %q has %d RDNs, want %d", v, dn, len(parsed.RDNs), len(parent.RDNs)+1)
	}
	first := parsed.RDNs[0]
	if len(first.Attributes) != 1 || first.Attributes[0].Type != "uid" || first.Attributes[0].Value != v {
		t.Fatalf("buildDN(%q) = %q: first RDN is %v, want uid=%q", v, dn, first, v)
	}
	if !(&goldap.DN{RDNs: parsed.RDNs[1:]}).Equal(parent) {
		t.Fatalf("buildDN(%q) = %q changed the parent", v, dn)
	}
}

// checkFilter asserts the fuzz property of buildFilter: the filter compiles
// to exactly the equality match uid=v.
func checkFilter(t *testing.T, v string) {
	t.Helper()
	f := buildFilter("uid", v)
	got, err := goldap.CompileFilter(f)
	if err != nil {
		if !utf8.ValidString(v) {
			return // go-ldap refuses invalid UTF-8 values; validateName does too
		}
		t.Fatalf("buildFilter(%q) = %q does not compile: %v", v, f, err)
	}
	want := ber.Encode(ber.ClassContext, ber.TypeConstructed, goldap.FilterEqualityMatch, nil, "Equality Match")
	want.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "uid", "Attribute"))
	want.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, v, "Condition"))
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("buildFilter(%q) = %q compiles to %x, want the equality match %x", v, f, got.Bytes(), want.Bytes())
	}
}

func FuzzBuildDN(f *testing.F) {
	for _, s := range []string{"alice", "x,ou=groups", "x+cn=admin", `\`, " ", "#", "x=y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		checkDN(t, v)
	})
}

func FuzzBuildFilter(f *testing.F) {
	for _, s := range []string{"alice", "*", "*)(uid=*", `\2a`, "(", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		checkFilter(t, v)
	})
}

func TestPageToken(t *testing.T) {
	tests := []struct{ cursor, after string }{
		{"", "alice"},
		{"0123456789abcdef01234567", "x,ou=groups"},
		{"", "*)(uid=*"},
		{"abc", "josé:with:colons"},
	}
	for _, tt := range tests {
		got, err := decodeToken(encodeToken(tt.cursor, tt.after))
		require.NoError(t, err)
		assert.Equal(t, pageToken{cursor: tt.cursor, after: tt.after}, got)
	}
	first, err := decodeToken("")
	require.NoError(t, err)
	assert.Zero(t, first)
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, bad := range []string{
		"!!!", "YWxpY2U", encodeToken("", ""), b64("u1:alice"), b64("u2:alice"), b64("u2:XYZ:alice"),
		b64("u2::" + strings.Repeat("x", maxTokenValue+1)), b64("u2::a\xffb"),
	} {
		_, err := decodeToken(bad)
		assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err), "token %q", bad)
	}
}

func TestConfigNeverShowsPassword(t *testing.T) {
	const secret = "s3cr3t-Passw0rd"
	cfg := Config{URL: "ldap://127.0.0.1:3389", BindDN: "cn=admin,dc=example,dc=com", BindPassword: secret,
		PeopleDN: testParent, GroupsDN: "ou=groups,dc=example,dc=com"}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", cfg)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", cfg, "ptr", &cfg)
	for _, s := range []string{
		fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s %q", cfg, cfg, cfg, cfg, cfg),
		fmt.Sprintf("%v %+v %#v", &cfg, &cfg, &cfg), logged.String(),
	} {
		assert.NotContains(t, s, secret)
		assert.Contains(t, s, redacted)
	}
}

func TestConfigValidation(t *testing.T) {
	ok := Config{URL: "ldap://127.0.0.1:3389", BindDN: "cn=admin,dc=example,dc=com", BindPassword: "pw",
		PeopleDN: testParent, GroupsDN: "ou=groups,dc=example,dc=com"}
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"no URL", func(c *Config) { c.URL = "" }},
		{"bad scheme", func(c *Config) { c.URL = "http://127.0.0.1" }},
		{"credentials in URL", func(c *Config) { c.URL = "ldap://u:pw@127.0.0.1" }},
		{"StartTLS over ldaps", func(c *Config) { c.URL, c.StartTLS = "ldaps://127.0.0.1", true }},
		{"bind DN without password", func(c *Config) { c.BindPassword = "" }},
		{"bad people DN", func(c *Config) { c.PeopleDN = "not a dn" }},
		{"no groups DN", func(c *Config) { c.GroupsDN = "" }},
		{"unknown strategy", func(c *Config) { c.DisableStrategy = "nis" }},
	}
	_, err := ok.withDefaults().validate()
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mutate(&cfg)
			_, err := cfg.withDefaults().validate()
			require.Error(t, err)
			assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err))
			assert.NotContains(t, err.Error(), "pw@")
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want connectors.ErrorKind
	}{
		{goldap.NewError(goldap.LDAPResultInvalidDNSyntax, errors.New("x")), connectors.KindInvalid},
		{goldap.NewError(goldap.LDAPResultNamingViolation, errors.New("x")), connectors.KindInvalid},
		{goldap.NewError(goldap.LDAPResultObjectClassViolation, errors.New("x")), connectors.KindInvalid},
		{goldap.NewError(goldap.LDAPResultInvalidAttributeSyntax, errors.New("x")), connectors.KindInvalid},
		{goldap.NewError(goldap.LDAPResultInsufficientAccessRights, errors.New("x")), connectors.KindPermission},
		{goldap.NewError(goldap.LDAPResultEntryAlreadyExists, errors.New("x")), connectors.KindConflict},
		{goldap.NewError(goldap.LDAPResultNoSuchObject, errors.New("x")), connectors.KindNotFound},
		{goldap.NewError(goldap.LDAPResultBusy, errors.New("x")), connectors.KindUnavailable},
		{goldap.NewError(goldap.ErrorNetwork, errors.New("ldap: connection closed")), connectors.KindUnavailable},
		{goldap.NewError(goldap.ErrorNetwork, errors.New("ldap: connection timed out")), connectors.KindTimeout},
		{goldap.NewError(goldap.LDAPResultTimeLimitExceeded, errors.New("x")), connectors.KindTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			got := classify("Op", tt.err)
			assert.Equal(t, tt.want, connectors.KindOf(got))
			assert.ErrorIs(t, got, tt.err, "cause kept for errors.Is")
		})
	}
}
