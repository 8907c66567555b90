package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// WithDatabase returns the PostgreSQL connection string raw with its
// database replaced. raw is a postgres:// URL or a key=value string, the two
// forms pgx accepts.
func WithDatabase(raw, database string) (string, error) {
	if !strings.Contains(raw, "://") && strings.Contains(raw, "=") {
		// In key=value form a later setting wins over an earlier one.
		return strings.TrimSpace(raw) + " dbname=" + quoteKV(database), nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("not a URL (%s)", Redact(raw))
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", fmt.Errorf("want a postgres:// URL, got %s", Redact(raw))
	}
	u.Path, u.RawPath = "/"+database, ""
	// A dbname (or pgx's own "database") query parameter would override
	// the path.
	if q := u.Query(); q.Has("dbname") || q.Has("database") {
		q.Del("dbname")
		q.Del("database")
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// quoteKV quotes a value for a key=value connection string.
func quoteKV(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// redacted replaces every secret Redact removes.
const redacted = "xxxxx"

// kvSecret finds password settings in key=value connection strings, quoted
// or not.
var kvSecret = regexp.MustCompile(`(?i)(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// Redact returns a connection string or URL with any password replaced by
// "xxxxx": the user-info password, secret query parameters (password,
// sslpassword, token, ...) and password settings of a key=value string. A
// URL that does not parse is hidden entirely, since it may be a secret.
func Redact(raw string) string {
	if !strings.Contains(raw, "://") {
		return kvSecret.ReplaceAllString(raw, "${1}"+redacted)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), redacted)
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return "(unparseable URL)"
		}
		changed := false
		for k := range q {
			if secretParam(k) {
				q.Set(k, redacted)
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// secretParam reports whether a query parameter name suggests a secret.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"password", "passwd", "secret", "token", "apikey", "api_key"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

func pathEscape(s string) string { return url.PathEscape(s) }
