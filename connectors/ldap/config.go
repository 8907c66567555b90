package ldap

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/provisio-dev/provisio/connectors"
)

// DisableStrategy selects how DisableAccount blocks logins.
type DisableStrategy string

const (
	// StrategyPPolicy locks the account with the OpenLDAP ppolicy overlay by
	// setting pwdAccountLockedTime to 000001010000Z, which ppolicy treats as
	// locked until an administrator removes it. The server needs the ppolicy
	// overlay and a default policy with pwdLockout TRUE; Verify also needs
	// ppolicy_use_lockout (see SkipVerifyBind). Beware: ppolicy
	// removes pwdAccountLockedTime whenever the password is changed, so a
	// password reset re-enables a disabled account until the lock is
	// written again (call DisableAccount after any reset).
	StrategyPPolicy DisableStrategy = "ppolicy"
	// StrategyAD sets the ACCOUNTDISABLE bit (0x2) of Active Directory's
	// userAccountControl. The bit is flipped with one modify that deletes the
	// old value and adds the new one, so a concurrent change of another bit
	// makes the modify fail and be retried instead of being overwritten.
	// Active Directory creates an account without a password disabled by
	// itself; EnsureAccount with Disabled also sets userAccountControl to 514
	// (NORMAL_ACCOUNT|ACCOUNTDISABLE). Verify probably needs
	// SkipVerifyBind with it. Not exercised by the test suite.
	StrategyAD DisableStrategy = "ad"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultPoolSize          = 4
	DefaultDialTimeout       = 5 * time.Second
	DefaultRequestTimeout    = 30 * time.Second
	DefaultPlaceholderMember = "cn=nobody"
	DefaultListCursors       = 8
	DefaultListCursorIdle    = 2 * time.Minute
)

// Config says how to reach the directory and where accounts and groups live.
// Print or log it freely: String, GoString and LogValue redact BindPassword.
type Config struct {
	// URL is ldap://host[:port] or ldaps://host[:port].
	URL string
	// BindDN and BindPassword are the service account's credentials; an
	// empty BindDN binds anonymously.
	BindDN       string
	BindPassword string
	// PeopleDN holds the accounts (uid=<username>,PeopleDN) and GroupsDN the
	// groupOfNames entitlements (searched in the whole subtree).
	PeopleDN string
	GroupsDN string
	// StartTLS upgrades an ldap:// connection with the StartTLS operation.
	StartTLS bool
	// TLSConfig is used for ldaps:// and StartTLS; nil means the system
	// roots with ServerName taken from URL.
	TLSConfig *tls.Config
	// InsecureSkipVerify disables certificate checks. Development only.
	InsecureSkipVerify bool
	// PoolSize is the most open connections; 0 means DefaultPoolSize.
	PoolSize int
	// DialTimeout bounds connecting, TLS and bind; 0 means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// RequestTimeout bounds each LDAP request; 0 means
	// DefaultRequestTimeout. A shorter context deadline wins.
	RequestTimeout time.Duration
	// DisableStrategy is StrategyPPolicy (default) or StrategyAD.
	DisableStrategy DisableStrategy
	// PlaceholderMember is the member value that keeps a groupOfNames valid
	// when its last real member is revoked; "" means
	// DefaultPlaceholderMember. It should name no account.
	PlaceholderMember string
	// ListCursors is how many listings may keep their sorted snapshot on
	// the server between pages, each on a connection of its own (outside
	// PoolSize); 0 means DefaultListCursors, a negative value keeps none
	// (every page then positions a new snapshot by value). The least
	// recently used is closed to make room.
	ListCursors int
	// ListCursorIdle closes a listing's snapshot left unused this long;
	// 0 means DefaultListCursorIdle.
	ListCursorIdle time.Duration
	// SkipVerifyBind makes Verify accept a disabled account on its lock
	// attribute alone, without the bind that shows the directory refuses
	// the account as locked. That bind proves something only where the
	// directory says why it refused: OpenLDAP does with the ppolicy overlay
	// and ppolicy_use_lockout. Set it for directories that cannot, such as
	// Active Directory, which may name a disabled account (data 533) only
	// to a bind with the right password and counts a wrong one in
	// badPwdCount towards its lockout threshold.
	SkipVerifyBind bool
}

const redacted = "[REDACTED]"

// String implements fmt.Stringer without revealing BindPassword.
func (c Config) String() string {
	pw := ""
	if c.BindPassword != "" {
		pw = redacted
	}
	return fmt.Sprintf("ldap.Config{URL:%q BindDN:%q BindPassword:%q PeopleDN:%q GroupsDN:%q StartTLS:%t TLSConfig:%t InsecureSkipVerify:%t PoolSize:%d DialTimeout:%s RequestTimeout:%s DisableStrategy:%q PlaceholderMember:%q ListCursors:%d ListCursorIdle:%s SkipVerifyBind:%t}",
		c.URL, c.BindDN, pw, c.PeopleDN, c.GroupsDN, c.StartTLS, c.TLSConfig != nil, c.InsecureSkipVerify,
		c.PoolSize, c.DialTimeout, c.RequestTimeout, c.DisableStrategy, c.PlaceholderMember, c.ListCursors, c.ListCursorIdle, c.SkipVerifyBind)
}

// GoString keeps %#v from printing BindPassword.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without revealing BindPassword.
func (c Config) LogValue() slog.Value {
	pw := ""
	if c.BindPassword != "" {
		pw = redacted
	}
	return slog.GroupValue(
		slog.String("url", c.URL),
		slog.String("bindDN", c.BindDN),
		slog.String("bindPassword", pw),
		slog.String("peopleDN", c.PeopleDN),
		slog.String("groupsDN", c.GroupsDN),
		slog.Bool("startTLS", c.StartTLS),
		slog.Bool("insecureSkipVerify", c.InsecureSkipVerify),
		slog.Int("poolSize", c.PoolSize),
		slog.Duration("requestTimeout", c.RequestTimeout),
		slog.String("disableStrategy", string(c.DisableStrategy)),
		slog.Int("listCursors", c.ListCursors),
		slog.Duration("listCursorIdle", c.ListCursorIdle),
		slog.Bool("skipVerifyBind", c.SkipVerifyBind),
	)
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	if c.PoolSize <= 0 {
		c.PoolSize = DefaultPoolSize
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.DisableStrategy == "" {
		c.DisableStrategy = StrategyPPolicy
	}
	if c.PlaceholderMember == "" {
		c.PlaceholderMember = DefaultPlaceholderMember
	}
	if c.ListCursors == 0 {
		c.ListCursors = DefaultListCursors
	}
	if c.ListCursorIdle <= 0 {
		c.ListCursorIdle = DefaultListCursorIdle
	}
	return c
}

// validate checks a defaulted Config and returns the parsed URL. Messages
// never quote BindPassword.
func (c Config) validate() (*url.URL, error) {
	invalid := func(format string, args ...any) error {
		return connectors.Errorf(connectors.KindInvalid, appName, "New", nil, "config: "+format, args...)
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Host == "" {
		return nil, invalid("URL must look like ldap://host:port or ldaps://host:port")
	}
	if u.User != nil {
		return nil, invalid("URL must not carry credentials; use BindDN and BindPassword")
	}
	switch u.Scheme {
	case "ldap":
	case "ldaps":
		if c.StartTLS {
			return nil, invalid("StartTLS makes no sense with ldaps://")
		}
	default:
		return nil, invalid("URL scheme %q is not ldap or ldaps", u.Scheme)
	}
	if c.BindDN != "" && c.BindPassword == "" {
		return nil, invalid("BindDN is set but BindPassword is empty")
	}
	for name, dn := range map[string]string{"BindDN": c.BindDN, "PeopleDN": c.PeopleDN, "GroupsDN": c.GroupsDN, "PlaceholderMember": c.PlaceholderMember} {
		if dn == "" && name == "BindDN" {
			continue
		}
		if dn == "" {
			return nil, invalid("%s is required", name)
		}
		if _, err := goldap.ParseDN(dn); err != nil {
			return nil, invalid("%s %q is not a DN: %v", name, dn, err)
		}
	}
	switch c.DisableStrategy {
	case StrategyPPolicy, StrategyAD:
	default:
		return nil, invalid("DisableStrategy %q is not %q or %q", c.DisableStrategy, StrategyPPolicy, StrategyAD)
	}
	return u, nil
}

// tlsConfig returns the TLS settings for host.
func (c Config) tlsConfig(host string) *tls.Config {
	var tc *tls.Config
	if c.TLSConfig != nil {
		tc = c.TLSConfig.Clone()
	} else {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	if c.InsecureSkipVerify {
		tc.InsecureSkipVerify = true //nolint:gosec // explicit development opt-in
	}
	return tc
}
