package scim

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/provisio-dev/provisio/connectors"
)

// DefaultName is the application name used when Config.Name is empty.
const DefaultName = "scim"

// DefaultMaxRetryAfter is how long one call may wait in total for
// Retry-After when Config.MaxRetryAfter is zero.
const DefaultMaxRetryAfter = 10 * time.Second

// DefaultTimeout bounds each HTTP request when Config.HTTPClient is nil.
const DefaultTimeout = 30 * time.Second

// Config says which SCIM service to talk to and how.
type Config struct {
	// Name is the application name reported by Name and in errors
	// (e.g. "salesforce"); DefaultName when empty.
	Name string
	// BaseURL is the SCIM base URL, e.g. https://app.example.com/scim/v2.
	// It must not carry credentials.
	BaseURL string
	// Token is the bearer token. It is a secret: String redacts it and no
	// error ever contains it.
	Token string
	// HTTPClient sends the requests; a client with DefaultTimeout when nil.
	HTTPClient *http.Client
	// MaxRetryAfter is the longest a call waits in total when the server
	// answers 429 or 503 with Retry-After; DefaultMaxRetryAfter when zero,
	// no waiting when negative. A longer wait is returned as Unavailable.
	MaxRetryAfter time.Duration
}

// String describes the configuration with the token redacted, so a Config
// can be logged.
func (c Config) String() string {
	token := ""
	if c.Token != "" {
		token = "[REDACTED]"
	}
	return fmt.Sprintf("scim.Config{Name: %q, BaseURL: %q, Token: %q, MaxRetryAfter: %s}",
		c.Name, c.BaseURL, token, c.MaxRetryAfter)
}

// GoString is String, so %#v does not print the token either.
func (c Config) GoString() string { return c.String() }

// Client is the SCIM connector. It is safe for concurrent use.
type Client struct {
	name          string
	base          string // BaseURL without a trailing slash
	token         string
	http          *http.Client
	maxRetryAfter time.Duration
}

var _ connectors.Connector = (*Client)(nil)

// New checks cfg and returns a Client. It does not contact the server.
func New(cfg Config) (*Client, error) {
	name := cfg.Name
	if name == "" {
		name = DefaultName
	}
	invalid := func(format string, args ...any) error {
		return connectors.Errorf(connectors.KindInvalid, name, "New", nil, format, args...)
	}
	u, err := url.Parse(cfg.BaseURL)
	switch {
	case cfg.BaseURL == "":
		return nil, invalid("BaseURL is required")
	case err != nil:
		return nil, invalid("BaseURL is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, invalid("BaseURL must be an http or https URL")
	case u.Host == "":
		return nil, invalid("BaseURL has no host")
	case u.User != nil:
		return nil, invalid("BaseURL must not carry credentials; set Token")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, invalid("BaseURL must not have a query or fragment")
	case cfg.Token == "":
		return nil, invalid("Token is required")
	case strings.ContainsAny(cfg.Token, "\r\n"):
		return nil, invalid("Token must be a single line")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	wait := cfg.MaxRetryAfter
	switch {
	case wait == 0:
		wait = DefaultMaxRetryAfter
	case wait < 0:
		wait = 0
	}
	return &Client{
		name:          name,
		base:          strings.TrimRight(u.String(), "/"),
		token:         cfg.Token,
		http:          hc,
		maxRetryAfter: wait,
	}, nil
}

// Name returns the application name.
func (c *Client) Name() string { return c.name }

// Close releases idle connections of the HTTP client.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}
