package config

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/codec"
)

// env is a lookup over a map, standing in for the process environment.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestDefaults(t *testing.T) {
	c, err := FromLookup(env(nil))
	require.NoError(t, err)
	assert.Equal(t, Config{
		TemporalAddress:   "127.0.0.1:7233",
		TemporalNamespace: "default",
		TaskQueue:         "provisioning",
		UIURL:             "http://127.0.0.1:8233",
		StoreURL:          "postgres://postgres@127.0.0.1:5432/provisio?sslmode=disable",
		PolicyFile:        "deployments/demo/policy.yaml",
		RosterFile:        "deployments/demo/roster.csv",
		LDAP: LDAP{
			URL:      "ldap://127.0.0.1:3389",
			BindDN:   "cn=admin,dc=example,dc=com",
			Password: "admin",
			BaseDN:   "dc=example,dc=com",
			PeopleDN: "ou=people,dc=example,dc=com",
			GroupsDN: "ou=groups,dc=example,dc=com",
		},
		Postgres:        Postgres{URL: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"},
		SCIM:            SCIM{URL: "http://127.0.0.1:8280/scim/v2", Token: "dev-scim-token"},
		ShutdownTimeout: 30 * time.Second,
		Webhook:         Webhook{Addr: "127.0.0.1:8290"},
		Codec:           Codec{ServerAddr: "127.0.0.1:8234"},
	}, c)
	assert.False(t, c.Codec.Enabled(), "without keys payloads are not encrypted")
}

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		key, value string
		get        func(Config) any
		want       any
	}{
		{"TEMPORAL_ADDRESS", "temporal.internal:7233", func(c Config) any { return c.TemporalAddress }, "temporal.internal:7233"},
		{"TEMPORAL_NAMESPACE", "hr", func(c Config) any { return c.TemporalNamespace }, "hr"},
		{"PROVISIO_TASK_QUEUE", "prov-2", func(c Config) any { return c.TaskQueue }, "prov-2"},
		{"TEMPORAL_UI_URL", "https://ui.example.com/", func(c Config) any { return c.UIURL }, "https://ui.example.com"},
		{"PROVISIO_POLICY", "/etc/provisio/policy.yaml", func(c Config) any { return c.PolicyFile }, "/etc/provisio/policy.yaml"},
		{"PROVISIO_ROSTER", "/srv/roster.csv", func(c Config) any { return c.RosterFile }, "/srv/roster.csv"},
		{"PG_URL", "postgres://admin@db:5432/postgres", func(c Config) any { return c.Postgres.URL }, "postgres://admin@db:5432/postgres"},
		{"SCIM_URL", "https://app.example.com/scim/v2", func(c Config) any { return c.SCIM.URL }, "https://app.example.com/scim/v2"},
		{"SCIM_TOKEN", "tok-123", func(c Config) any { return c.SCIM.Token }, "tok-123"},
		{"LDAP_URL", "ldaps://ldap.example.com", func(c Config) any { return c.LDAP.URL }, "ldaps://ldap.example.com"},
		{"LDAP_BIND_DN", "cn=provisio,dc=corp", func(c Config) any { return c.LDAP.BindDN }, "cn=provisio,dc=corp"},
		{"LDAP_BIND_PASSWORD", "hunter2", func(c Config) any { return c.LDAP.Password }, "hunter2"},
		{"LDAP_BASE_DN", "dc=corp,dc=example", func(c Config) any { return c.LDAP.BaseDN }, "dc=corp,dc=example"},
		{"LDAP_BASE_DN", "dc=corp", func(c Config) any { return c.LDAP.BindDN }, "cn=admin,dc=corp"},
		{"LDAP_BASE_DN", "dc=corp", func(c Config) any { return c.LDAP.PeopleDN }, "ou=people,dc=corp"},
		{"LDAP_BASE_DN", "dc=corp", func(c Config) any { return c.LDAP.GroupsDN }, "ou=groups,dc=corp"},
		{"LDAP_PEOPLE_DN", "ou=staff,dc=example,dc=com", func(c Config) any { return c.LDAP.PeopleDN }, "ou=staff,dc=example,dc=com"},
		{"LDAP_GROUPS_DN", "ou=roles,dc=example,dc=com", func(c Config) any { return c.LDAP.GroupsDN }, "ou=roles,dc=example,dc=com"},
		{"LDAP_STARTTLS", "true", func(c Config) any { return c.LDAP.StartTLS }, true},
		{"LDAP_STARTTLS", "1", func(c Config) any { return c.LDAP.StartTLS }, true},
		{"LDAP_STARTTLS", "false", func(c Config) any { return c.LDAP.StartTLS }, false},
		{"LDAP_SKIP_VERIFY_BIND", "true", func(c Config) any { return c.LDAP.SkipVerifyBind }, true},
		{"PROVISIO_WEBHOOK_ADDR", ":8443", func(c Config) any { return c.Webhook.Addr }, ":8443"},
		{"PROVISIO_WEBHOOK_SECRET", " 0123456789abcdef0123456789abcdef\n", func(c Config) any { return c.Webhook.Secret }, "0123456789abcdef0123456789abcdef"},
		{"PROVISIO_SHUTDOWN_TIMEOUT", "2m30s", func(c Config) any { return c.ShutdownTimeout }, 150 * time.Second},
		{"PROVISIO_DB_URL", "postgres://store@db2/provisio_prod", func(c Config) any { return c.StoreURL }, "postgres://store@db2/provisio_prod"},
		{"PG_URL", "postgres://u:s3cret@db:6432/postgres?sslmode=require", func(c Config) any { return c.StoreURL }, "postgres://u:s3cret@db:6432/provisio?sslmode=require"},
		{"PG_URL", "postgresql://db/other", func(c Config) any { return c.StoreURL }, "postgresql://db/provisio"},
		{"PG_URL", "postgres://db", func(c Config) any { return c.StoreURL }, "postgres://db/provisio"},
		{"PG_URL", "postgres://db/x?dbname=x&sslmode=disable", func(c Config) any { return c.StoreURL }, "postgres://db/provisio?sslmode=disable"},
		{"PG_URL", "host=db user=u dbname=postgres", func(c Config) any { return c.StoreURL }, "host=db user=u dbname=postgres dbname='provisio'"},
		// Surrounding space is a copy-paste accident; blank means unset.
		{"TEMPORAL_ADDRESS", "  temporal:7233 \n", func(c Config) any { return c.TemporalAddress }, "temporal:7233"},
		{"TEMPORAL_ADDRESS", "   ", func(c Config) any { return c.TemporalAddress }, DefaultTemporalAddress},
		{"PROVISIO_SHUTDOWN_TIMEOUT", "", func(c Config) any { return c.ShutdownTimeout }, 30 * time.Second},
		{"PROVISIO_CODEC_ADDR", "0.0.0.0:9234", func(c Config) any { return c.Codec.ServerAddr }, "0.0.0.0:9234"},
		{"PROVISIO_CODEC_KEYS", "k1:" + testKeyB64(1), func(c Config) any { return c.Codec.KeyID }, "k1"},
		{"PROVISIO_CODEC_KEYS", "k1:" + testKeyB64(1), func(c Config) any { return c.Codec.Enabled() }, true},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			c, err := FromLookup(env(map[string]string{tt.key: tt.value}))
			require.NoError(t, err)
			assert.Equal(t, tt.want, tt.get(c))
		})
	}
}

func TestStoreURLOverrideNeedsNoUsablePGURL(t *testing.T) {
	c, err := FromLookup(env(map[string]string{
		"PG_URL":          "postgres://u:p@db:notaport/x",
		"PROVISIO_DB_URL": "postgres://store@db2/provisio",
	}))
	require.NoError(t, err)
	assert.Equal(t, "postgres://store@db2/provisio", c.StoreURL)
}

func TestEnvErrors(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantErr  string
		mustHide string
	}{
		{"starttls word", map[string]string{"LDAP_STARTTLS": "yes please"}, `LDAP_STARTTLS: want true or false, got "yes please"`, ""},
		{"starttls yes", map[string]string{"LDAP_STARTTLS": "yes"}, "LDAP_STARTTLS", ""},
		{"skip verify bind word", map[string]string{"LDAP_SKIP_VERIFY_BIND": "maybe"}, `LDAP_SKIP_VERIFY_BIND: want true or false, got "maybe"`, ""},
		{"timeout without unit", map[string]string{"PROVISIO_SHUTDOWN_TIMEOUT": "30"}, "PROVISIO_SHUTDOWN_TIMEOUT", ""},
		{"timeout word", map[string]string{"PROVISIO_SHUTDOWN_TIMEOUT": "soon"}, "PROVISIO_SHUTDOWN_TIMEOUT", ""},
		{"PG_URL that does not parse", map[string]string{"PG_URL": "postgres://u:s3cret@db:notaport/x"}, "PG_URL", "s3cret"},
		{"PG_URL with a bad escape", map[string]string{"PG_URL": "postgres://u:s3%cret@db/x"}, "PG_URL", "s3"},
		{"PG_URL of another scheme", map[string]string{"PG_URL": "mysql://u:s3cret@db/x"}, "postgres:// URL", "s3cret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromLookup(env(tt.env))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			if tt.mustHide != "" {
				assert.NotContains(t, err.Error(), tt.mustHide)
			}
			assert.Equal(t, Config{}, c, "a failed load returns no half-built config")
		})
	}
}

func TestStringHidesSecrets(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		secrets []string
		shows   []string
	}{
		{
			name:    "defaults",
			env:     map[string]string{},
			secrets: []string{"dev-scim-token", "admin"},
			shows:   []string{"encryption=off", "temporal=127.0.0.1:7233", "pg=postgres://postgres@127.0.0.1:5432/postgres", "store=postgres://postgres@127.0.0.1:5432/provisio"},
		},
		{
			name: "password in PG_URL",
			env: map[string]string{
				"PG_URL": "postgres://u:s3cret@h/db", "LDAP_BIND_PASSWORD": "ld4p-pw", "SCIM_TOKEN": "sc1m-tok",
			},
			secrets: []string{"s3cret", "ld4p-pw", "sc1m-tok"},
			shows:   []string{"pg=postgres://u:xxxxx@h/db", "store=postgres://u:xxxxx@h/provisio"},
		},
		{
			name:    "password as a query parameter",
			env:     map[string]string{"PG_URL": "postgres://u@h/db?sslmode=require&password=s3cret"},
			secrets: []string{"s3cret"},
			shows:   []string{"sslmode=require"},
		},
		{
			name:    "key=value PG_URL",
			env:     map[string]string{"PG_URL": "host=h user=u password=s3cret dbname=db"},
			secrets: []string{"s3cret"},
			shows:   []string{"host=h", "password=xxxxx"},
		},
		{
			name:    "quoted key=value password",
			env:     map[string]string{"PG_URL": "host=h password='s3 cret' dbname=db"},
			secrets: []string{"s3", "cret"},
		},
		{
			name:    "store URL override with a password",
			env:     map[string]string{"PROVISIO_DB_URL": "postgres://store:st0re-pw@h/provisio"},
			secrets: []string{"st0re-pw"},
		},
		{
			name:    "webhook secret",
			env:     map[string]string{"PROVISIO_WEBHOOK_SECRET": "whs3cret-0123456789abcdef0123456789", "PROVISIO_WEBHOOK_ADDR": "0.0.0.0:9000"},
			secrets: []string{"whs3cret"},
			shows:   []string{"webhook=0.0.0.0:9000"},
		},
		{
			name:    "codec keys",
			env:     map[string]string{"PROVISIO_CODEC_KEYS": "old:" + testKeyB64(1) + ",new:" + testKeyB64(2), "PROVISIO_CODEC_KEY_ID": "new"},
			secrets: []string{testKeyB64(1), testKeyB64(2), testKeyB64(1)[:12]},
			shows:   []string{"encryption=aes-256-gcm(key=new,keys=2)"},
		},
		{
			name:    "credentials in the LDAP and SCIM URLs",
			env:     map[string]string{"LDAP_URL": "ldap://cn:ldap-url-pw@dir", "SCIM_URL": "https://app/scim/v2?access_token=url-tok"},
			secrets: []string{"ldap-url-pw", "url-tok"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromLookup(env(tt.env))
			require.NoError(t, err)
			s := c.String()
			for _, secret := range tt.secrets {
				if secret == "admin" {
					// "admin" is also part of the bind DN, which is not shown.
					assert.NotContains(t, s, "=admin")
					continue
				}
				assert.NotContains(t, s, secret)
			}
			for _, want := range tt.shows {
				assert.Contains(t, s, want)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:s3cret@h/db", "postgres://u:xxxxx@h/db"},
		{"postgres://u@h/db?sslmode=disable", "postgres://u@h/db?sslmode=disable"},
		{"postgres://u:s3cret@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgres://u@h/db?password=s3cret", "postgres://u@h/db?password=xxxxx"},
		{"postgres://u@h/db?PassWord=s3cret&sslmode=verify-full", "postgres://u@h/db?PassWord=xxxxx&sslmode=verify-full"},
		{"postgres://u@h/db?sslpassword=s3cret", "postgres://u@h/db?sslpassword=xxxxx"},
		{"https://app/scim?token=s3cret", "https://app/scim?token=xxxxx"},
		{"postgres://u:s3%cret@h/db", "(unparseable URL)"},
		{"postgres://u:s3cret@h:port/db", "(unparseable URL)"},
		{"host=h password=s3cret user=u", "host=h password=xxxxx user=u"},
		{"host=h password = s3cret", "host=h password = xxxxx"},
		{`host=h password='s3 \' cret' user=u`, "host=h password=xxxxx user=u"},
		{"host=h sslpassword=s3cret", "host=h sslpassword=xxxxx"},
		{"ldap://127.0.0.1:3389", "ldap://127.0.0.1:3389"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := Redact(tt.in)
			assert.Equal(t, tt.want, got)
			assert.NotContains(t, got, "s3cret")
		})
	}
}

func TestWithDatabase(t *testing.T) {
	tests := []struct {
		raw, db, want string
		wantErr       bool
	}{
		{raw: "postgres://u@h:5432/postgres?sslmode=disable", db: "provisio", want: "postgres://u@h:5432/provisio?sslmode=disable"},
		{raw: "postgres://u@h", db: "provisio", want: "postgres://u@h/provisio"},
		{raw: "postgres://u@h/a%2Fb", db: "provisio", want: "postgres://u@h/provisio"},
		{raw: "postgres://u@h/x?database=x", db: "provisio", want: "postgres://u@h/provisio"},
		{raw: "postgres://u@h/x", db: "my db", want: "postgres://u@h/my%20db"},
		{raw: "host=h dbname=x", db: "provisio", want: "host=h dbname=x dbname='provisio'"},
		{raw: "host=h", db: `it's`, want: `host=h dbname='it\'s'`},
		{raw: "http://h/x", db: "provisio", wantErr: true},
		{raw: "not a url", db: "provisio", wantErr: true},
		{raw: "postgres://u:s3cret@h:bad/x", db: "provisio", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			got, err := WithDatabase(tt.raw, tt.db)
			if tt.wantErr {
				require.Error(t, err)
				assert.NotContains(t, err.Error(), "s3cret")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRunURL(t *testing.T) {
	c := Config{UIURL: "http://127.0.0.1:8233", TemporalNamespace: "default"}
	tests := []struct {
		name, ns, workflowID, runID, want string
	}{
		{"plain", "default", "onboarding-E100001", "", "http://127.0.0.1:8233/namespaces/default/workflows/onboarding-E100001"},
		{"with run", "default", "onboarding-E100001", "0f1e-22", "http://127.0.0.1:8233/namespaces/default/workflows/onboarding-E100001/0f1e-22/history"},
		{"slash", "default", "a/b", "", "http://127.0.0.1:8233/namespaces/default/workflows/a%2Fb"},
		{"query and fragment", "default", "a?b=c#d", "", "http://127.0.0.1:8233/namespaces/default/workflows/a%3Fb=c%23d"},
		{"space and percent", "default", "a b%", "", "http://127.0.0.1:8233/namespaces/default/workflows/a%20b%25"},
		{"dot segments", "default", "../../x", "", "http://127.0.0.1:8233/namespaces/default/workflows/..%2F..%2Fx"},
		{"non-ASCII", "default", "José", "", "http://127.0.0.1:8233/namespaces/default/workflows/Jos%C3%A9"},
		{"hostile namespace and run", "a/b", "w", "r/../x", "http://127.0.0.1:8233/namespaces/a%2Fb/workflows/w/r%2F..%2Fx/history"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.TemporalNamespace = tt.ns
			got := c.RunURL(tt.workflowID, tt.runID)
			assert.Equal(t, tt.want, got)
			assert.False(t, strings.ContainsAny(strings.TrimPrefix(got, "http://"), "?# "), "unescaped character in %q", got)
		})
	}
}

func TestWebhookSecretCheck(t *testing.T) {
	tests := []struct {
		secret, want string
	}{
		{"", "PROVISIO_WEBHOOK_SECRET is required"},
		{"short-but-secret", "PROVISIO_WEBHOOK_SECRET has 16 bytes; at least 32 are required"},
		{strings.Repeat("k", 32), ""},
	}
	for _, tt := range tests {
		err := Webhook{Secret: tt.secret}.CheckSecret()
		if tt.want == "" {
			assert.NoError(t, err)
			continue
		}
		require.Error(t, err)
		assert.Contains(t, err.Error(), tt.want)
		if tt.secret != "" {
			assert.NotContains(t, err.Error(), tt.secret, "the secret is never repeated")
		}
	}
}

// testKeyB64 is a 32-byte key of b's, base64-encoded.
func testKeyB64(b byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, codec.KeySize))
}

func TestCodecSettings(t *testing.T) {
	k1, k2 := "k1:"+testKeyB64(1), "k2:"+testKeyB64(2)
	keyFile := filepath.Join(t.TempDir(), "codec.keys")
	require.NoError(t, os.WriteFile(keyFile, []byte("# dev keys\n"+k1+"\n"+k2+"\n"), 0o600))
	tests := []struct {
		name      string
		env       map[string]string
		wantIDs   []string
		wantKeyID string
	}{
		{"one key", map[string]string{"PROVISIO_CODEC_KEYS": k1}, []string{"k1"}, "k1"},
		{"rotation: two keys, the new one encrypts", map[string]string{"PROVISIO_CODEC_KEYS": k1 + "," + k2, "PROVISIO_CODEC_KEY_ID": "k2"}, []string{"k1", "k2"}, "k2"},
		{"key file", map[string]string{"PROVISIO_CODEC_KEYS_FILE": keyFile, "PROVISIO_CODEC_KEY_ID": "k1"}, []string{"k1", "k2"}, "k1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromLookup(env(tt.env))
			require.NoError(t, err)
			require.True(t, c.Codec.Enabled())
			var ids []string
			for _, k := range c.Codec.Keys {
				ids = append(ids, k.ID)
			}
			assert.Equal(t, tt.wantIDs, ids)
			assert.Equal(t, tt.wantKeyID, c.Codec.KeyID)
			cd, err := c.Codec.New()
			require.NoError(t, err)
			assert.Equal(t, tt.wantKeyID, cd.KeyID())
			for _, format := range []string{"%v", "%+v", "%#v"} {
				s := fmt.Sprintf(format, c)
				assert.NotContains(t, s, testKeyB64(1)[:12], format)
				assert.NotContains(t, s, "[1 1 1 1", format)
			}
		})
	}
	_, err := Config{}.Codec.New()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "payload encryption is off")
}

func TestCodecSettingErrors(t *testing.T) {
	k1, k2 := "k1:"+testKeyB64(1), "k2:"+testKeyB64(2)
	dir := t.TempDir()
	emptyFile := filepath.Join(dir, "empty.keys")
	require.NoError(t, os.WriteFile(emptyFile, []byte("\n"), 0o600))
	badFile := filepath.Join(dir, "bad.keys")
	require.NoError(t, os.WriteFile(badFile, []byte("k1:"+testKeyB64(1)[:20]+"\n"), 0o600))
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"key of 16 bytes", map[string]string{"PROVISIO_CODEC_KEYS": "k1:" + base64.StdEncoding.EncodeToString(make([]byte, 16))},
			`PROVISIO_CODEC_KEYS: entry 1: key "k1" has 16 bytes, want 32`},
		{"bad base64", map[string]string{"PROVISIO_CODEC_KEYS": "k1:%%%"}, "PROVISIO_CODEC_KEYS: entry 1 (key \"k1\"): the key is not valid standard base64"},
		{"duplicate IDs", map[string]string{"PROVISIO_CODEC_KEYS": k1 + ",k1:" + testKeyB64(2)}, `PROVISIO_CODEC_KEYS: entry 2: key ID "k1" appears twice`},
		{"key ID not among the keys", map[string]string{"PROVISIO_CODEC_KEYS": k1 + "," + k2, "PROVISIO_CODEC_KEY_ID": "k3"},
			`PROVISIO_CODEC_KEY_ID: codec: key ID "k3" is not among the keys (k1, k2)`},
		{"two keys, none named", map[string]string{"PROVISIO_CODEC_KEYS": k1 + "," + k2}, "PROVISIO_CODEC_KEY_ID: codec: 2 keys (k1, k2) and none named"},
		{"key ID without keys", map[string]string{"PROVISIO_CODEC_KEY_ID": "k1"}, "PROVISIO_CODEC_KEY_ID is set but there are no keys"},
		{"keys twice", map[string]string{"PROVISIO_CODEC_KEYS": k1, "PROVISIO_CODEC_KEYS_FILE": emptyFile}, "PROVISIO_CODEC_KEYS and PROVISIO_CODEC_KEYS_FILE are both set"},
		{"missing file", map[string]string{"PROVISIO_CODEC_KEYS_FILE": filepath.Join(dir, "nope")}, "PROVISIO_CODEC_KEYS_FILE: open"},
		{"empty file", map[string]string{"PROVISIO_CODEC_KEYS_FILE": emptyFile}, "PROVISIO_CODEC_KEYS_FILE " + emptyFile + ": the file is empty"},
		{"bad key in the file", map[string]string{"PROVISIO_CODEC_KEYS_FILE": badFile}, "PROVISIO_CODEC_KEYS_FILE " + badFile + ": entry 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromLookup(env(tt.env))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.NotContains(t, err.Error(), testKeyB64(1)[:20], "the key is never repeated")
			assert.NotContains(t, err.Error(), testKeyB64(2)[:20], "the key is never repeated")
			assert.Equal(t, Config{}, c, "a failed load returns no half-built config")
		})
	}
}
