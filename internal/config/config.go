package config

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/provisio-dev/provisio/internal/codec"
)

// Config is everything the worker and the CLI need to reach the stack.
type Config struct {
	// TemporalAddress is the Temporal frontend (TEMPORAL_ADDRESS).
	TemporalAddress string
	// TemporalNamespace is the namespace runs live in (TEMPORAL_NAMESPACE).
	TemporalNamespace string
	// TaskQueue is the queue the worker polls (PROVISIO_TASK_QUEUE).
	TaskQueue string
	// UIURL is the Temporal UI base URL printed in links (TEMPORAL_UI_URL).
	UIURL string
	// StoreURL is the PostgreSQL database holding the project's own tables
	// (PROVISIO_DB_URL; defaults to PG_URL's server, database "provisio").
	StoreURL string
	// PolicyFile is the policy YAML (PROVISIO_POLICY).
	PolicyFile string
	// RosterFile is the HR roster (PROVISIO_ROSTER): the CLI looks people up
	// in it, and the worker finds approvers' managers in it for escalation.
	RosterFile string
	// LDAP, Postgres and SCIM configure the three target applications.
	LDAP     LDAP
	Postgres Postgres
	SCIM     SCIM
	// ShutdownTimeout bounds how long the worker waits for running
	// activities on shutdown (PROVISIO_SHUTDOWN_TIMEOUT).
	ShutdownTimeout time.Duration
	// Webhook configures `starter serve`, the HR webhook.
	Webhook Webhook
	// Codec configures payload encryption and `starter codec-server`.
	Codec Codec
}

// Codec configures the payload codec: with keys, every payload the worker
// and the CLI send to Temporal (inputs, results, memos, failure messages)
// is encrypted with AES-256-GCM, so the Temporal database holds no names or
// e-mails. Without keys, payloads are stored as plain JSON.
type Codec struct {
	// Keys decrypt payloads; the one named KeyID also encrypts
	// (PROVISIO_CODEC_KEYS="id:base64key,..." or a file of such entries
	// named by PROVISIO_CODEC_KEYS_FILE; secret, never logged).
	Keys []codec.Key
	// KeyID names the key new payloads are encrypted with
	// (PROVISIO_CODEC_KEY_ID; may be left out when there is one key).
	KeyID string
	// ServerAddr is where `starter codec-server` listens
	// (PROVISIO_CODEC_ADDR).
	ServerAddr string
}

// Enabled reports whether payloads are encrypted.
func (c Codec) Enabled() bool { return len(c.Keys) > 0 }

// New builds the payload codec of these settings.
func (c Codec) New() (*codec.Codec, error) {
	if !c.Enabled() {
		return nil, errors.New("payload encryption is off: set PROVISIO_CODEC_KEYS or PROVISIO_CODEC_KEYS_FILE")
	}
	return codec.New(c.Keys, c.KeyID)
}

// Webhook configures the HTTP endpoint HR systems post events to.
type Webhook struct {
	// Addr is the host:port it listens on (PROVISIO_WEBHOOK_ADDR); the
	// default is loopback only, so exposing it is a decision.
	Addr string
	// Secret is the shared HMAC key HR signs with
	// (PROVISIO_WEBHOOK_SECRET; secret, never logged).
	Secret string
}

// MinWebhookSecretLen is the shortest secret the webhook accepts: 32
// bytes, the size of the HMAC-SHA256 output, e.g. `openssl rand -hex 32`.
const MinWebhookSecretLen = 32

// CheckSecret refuses a missing or short secret; the error says how to
// make one and never repeats the value.
func (w Webhook) CheckSecret() error {
	switch {
	case w.Secret == "":
		return errors.New("PROVISIO_WEBHOOK_SECRET is required: the shared secret HR signs events with (make one with `openssl rand -hex 32`)")
	case len(w.Secret) < MinWebhookSecretLen:
		return fmt.Errorf("PROVISIO_WEBHOOK_SECRET has %d bytes; at least %d are required (make one with `openssl rand -hex 32`)", len(w.Secret), MinWebhookSecretLen)
	}
	return nil
}

// LDAP configures the directory connector.
type LDAP struct {
	URL      string // LDAP_URL
	BindDN   string // LDAP_BIND_DN
	Password string // LDAP_BIND_PASSWORD (secret)
	BaseDN   string // LDAP_BASE_DN
	PeopleDN string // LDAP_PEOPLE_DN, default ou=people,<base>
	GroupsDN string // LDAP_GROUPS_DN, default ou=groups,<base>
	// StartTLS upgrades a plain connection (LDAP_STARTTLS=true).
	StartTLS bool
	// SkipVerifyBind trusts the lock attribute when a disable is read back,
	// without the bind that proves the directory refuses the account
	// (LDAP_SKIP_VERIFY_BIND=true): for directories that cannot say why a
	// bind fails (OpenLDAP without ppolicy_use_lockout, perhaps Active
	// Directory).
	SkipVerifyBind bool
}

// Postgres configures the PostgreSQL roles connector.
type Postgres struct {
	URL string // PG_URL (may hold a password: secret)
}

// SCIM configures the SCIM connector.
type SCIM struct {
	URL   string // SCIM_URL
	Token string // SCIM_TOKEN (secret)
}

// Defaults for the local stack started by `make stack`.
const (
	DefaultTemporalAddress = "127.0.0.1:7233"
	DefaultUIURL           = "http://127.0.0.1:8233"
	DefaultNamespace       = "default"
	DefaultTaskQueue       = "provisioning"
	DefaultPGURL           = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	DefaultLDAPURL         = "ldap://127.0.0.1:3389"
	DefaultLDAPBase        = "dc=example,dc=com"
	DefaultSCIMURL         = "http://127.0.0.1:8280/scim/v2"
	DefaultPolicyFile      = "deployments/demo/policy.yaml"
	DefaultRosterFile      = "deployments/demo/roster.csv"
	DefaultWebhookAddr     = "127.0.0.1:8290"
	DefaultCodecAddr       = "127.0.0.1:8234"
	// StoreDatabase is the database name of the project's own tables.
	StoreDatabase = "provisio"
)

// FromEnv returns the defaults overridden by the environment.
func FromEnv() (Config, error) { return FromLookup(os.LookupEnv) }

// FromLookup is FromEnv with an injectable lookup, for tests.
func FromLookup(lookup func(string) (string, bool)) (Config, error) {
	get := func(key, def string) string {
		if v, ok := lookup(key); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	c := Config{
		TemporalAddress:   get("TEMPORAL_ADDRESS", DefaultTemporalAddress),
		TemporalNamespace: get("TEMPORAL_NAMESPACE", DefaultNamespace),
		TaskQueue:         get("PROVISIO_TASK_QUEUE", DefaultTaskQueue),
		UIURL:             strings.TrimRight(get("TEMPORAL_UI_URL", DefaultUIURL), "/"),
		PolicyFile:        get("PROVISIO_POLICY", DefaultPolicyFile),
		RosterFile:        get("PROVISIO_ROSTER", DefaultRosterFile),
		Postgres:          Postgres{URL: get("PG_URL", DefaultPGURL)},
		SCIM:              SCIM{URL: get("SCIM_URL", DefaultSCIMURL), Token: get("SCIM_TOKEN", "dev-scim-token")},
		// The secret is trimmed like the rest: a trailing newline from a
		// secret file is an accident HR's side would not sign with.
		Webhook: Webhook{Addr: get("PROVISIO_WEBHOOK_ADDR", DefaultWebhookAddr), Secret: get("PROVISIO_WEBHOOK_SECRET", "")},
	}
	base := get("LDAP_BASE_DN", DefaultLDAPBase)
	c.LDAP = LDAP{
		URL:      get("LDAP_URL", DefaultLDAPURL),
		BindDN:   get("LDAP_BIND_DN", "cn=admin,"+base),
		Password: get("LDAP_BIND_PASSWORD", "admin"),
		BaseDN:   base,
		PeopleDN: get("LDAP_PEOPLE_DN", "ou=people,"+base),
		GroupsDN: get("LDAP_GROUPS_DN", "ou=groups,"+base),
	}
	var err error
	if v := get("LDAP_STARTTLS", ""); v != "" {
		if c.LDAP.StartTLS, err = strconv.ParseBool(v); err != nil {
			return Config{}, fmt.Errorf("LDAP_STARTTLS: want true or false, got %q", v)
		}
	}
	if v := get("LDAP_SKIP_VERIFY_BIND", ""); v != "" {
		if c.LDAP.SkipVerifyBind, err = strconv.ParseBool(v); err != nil {
			return Config{}, fmt.Errorf("LDAP_SKIP_VERIFY_BIND: want true or false, got %q", v)
		}
	}
	c.ShutdownTimeout = 30 * time.Second
	if v := get("PROVISIO_SHUTDOWN_TIMEOUT", ""); v != "" {
		if c.ShutdownTimeout, err = time.ParseDuration(v); err != nil {
			return Config{}, fmt.Errorf("PROVISIO_SHUTDOWN_TIMEOUT: %w", err)
		}
	}
	if c.Codec, err = codecFromEnv(get); err != nil {
		return Config{}, err
	}
	// The store URL is derived from PG_URL only when it is not given, so an
	// explicit PROVISIO_DB_URL works whatever form PG_URL takes.
	if c.StoreURL = get("PROVISIO_DB_URL", ""); c.StoreURL == "" {
		if c.StoreURL, err = WithDatabase(c.Postgres.URL, StoreDatabase); err != nil {
			return Config{}, fmt.Errorf("PG_URL (set PROVISIO_DB_URL to name the store database directly): %w", err)
		}
	}
	return c, nil
}

// codecFromEnv reads the codec settings and checks them now, so a bad key
// stops the process at start rather than at its first payload.
func codecFromEnv(get func(key, def string) string) (Codec, error) {
	c := Codec{ServerAddr: get("PROVISIO_CODEC_ADDR", DefaultCodecAddr)}
	spec, file, id := get("PROVISIO_CODEC_KEYS", ""), get("PROVISIO_CODEC_KEYS_FILE", ""), get("PROVISIO_CODEC_KEY_ID", "")
	source := "PROVISIO_CODEC_KEYS"
	switch {
	case spec != "" && file != "":
		return Codec{}, errors.New("PROVISIO_CODEC_KEYS and PROVISIO_CODEC_KEYS_FILE are both set: set one")
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return Codec{}, fmt.Errorf("PROVISIO_CODEC_KEYS_FILE: %w", err)
		}
		spec, source = string(data), "PROVISIO_CODEC_KEYS_FILE "+file
		if strings.TrimSpace(spec) == "" {
			return Codec{}, fmt.Errorf("%s: the file is empty", source)
		}
	}
	if spec == "" {
		if id != "" {
			return Codec{}, errors.New("PROVISIO_CODEC_KEY_ID is set but there are no keys: set PROVISIO_CODEC_KEYS or PROVISIO_CODEC_KEYS_FILE")
		}
		return c, nil
	}
	keys, err := codec.ParseKeys(spec)
	if err != nil {
		return Codec{}, fmt.Errorf("%s: %w", source, err)
	}
	cd, err := codec.New(keys, id)
	if err != nil {
		return Codec{}, fmt.Errorf("PROVISIO_CODEC_KEY_ID: %w", err)
	}
	c.Keys, c.KeyID = keys, cd.KeyID()
	return c, nil
}

// String describes the configuration with every secret redacted, so it can
// be logged at start-up.
func (c Config) String() string {
	enc := "off"
	if c.Codec.Enabled() {
		enc = fmt.Sprintf("aes-256-gcm(key=%s,keys=%d)", c.Codec.KeyID, len(c.Codec.Keys))
	}
	return fmt.Sprintf("temporal=%s namespace=%s queue=%s ui=%s store=%s ldap=%s pg=%s scim=%s policy=%s webhook=%s encryption=%s",
		c.TemporalAddress, c.TemporalNamespace, c.TaskQueue, c.UIURL, Redact(c.StoreURL),
		Redact(c.LDAP.URL), Redact(c.Postgres.URL), Redact(c.SCIM.URL), c.PolicyFile, c.Webhook.Addr, enc)
}

// RunURL is the Temporal UI page of one workflow run.
func (c Config) RunURL(workflowID, runID string) string {
	u := fmt.Sprintf("%s/namespaces/%s/workflows/%s", c.UIURL, pathEscape(c.TemporalNamespace), pathEscape(workflowID))
	if runID != "" {
		u += "/" + pathEscape(runID) + "/history"
	}
	return u
}
