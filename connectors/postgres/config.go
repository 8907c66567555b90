package postgres

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// DefaultName is the application name used when Config.Name is empty.
const DefaultName = "postgres"

// Config configures a Client.
type Config struct {
	// URL is a pgx connection string (URL or key=value form). It may carry a
	// password; String redacts it and no error ever includes it.
	URL string
	// Name is the application name the connector reports; DefaultName if
	// empty. Several PostgreSQL clusters are told apart by name.
	Name string
	// RolePrefix, when set, is prepended to every username to form the role
	// name (username "jose.munoz" with prefix "u_" is role "u_jose.munoz")
	// and stripped when reading. ListAccounts only lists roles that start
	// with it. The prefix counts against the 63-byte role name limit.
	RolePrefix string
	// MaxConns caps the pool size; 0 keeps pgx's default.
	MaxConns int32
}

// String describes the configuration with any password in the URL replaced
// by "REDACTED", so a Config can be logged.
func (c Config) String() string {
	return fmt.Sprintf("postgres.Config{Name: %q, URL: %q, RolePrefix: %q, MaxConns: %d}",
		c.Name, redactURL(c.URL), c.RolePrefix, c.MaxConns)
}

// GoString is String, so that %#v cannot print the password either.
func (c Config) GoString() string { return c.String() }

func (c Config) name() string {
	if c.Name == "" {
		return DefaultName
	}
	return c.Name
}

// kvPassword finds password settings in key=value connection strings,
// quoted or not.
var kvPassword = regexp.MustCompile(`(?i)(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// redactURL removes passwords from a connection string in either form.
func redactURL(s string) string {
	const redacted = "REDACTED"
	if u, err := url.Parse(s); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), redacted)
		}
		q := u.Query()
		for k := range q {
			if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
				q.Set(k, redacted)
			}
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	if strings.Contains(s, "://") {
		// A URL we cannot parse may hide a password anywhere.
		return "<unparsable URL, " + redacted + ">"
	}
	return kvPassword.ReplaceAllString(s, "${1}"+redacted)
}
