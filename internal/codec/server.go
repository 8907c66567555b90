package codec

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/converter"

	"github.com/provisio-dev/provisio/internal/httpserve"
)

// Limits of the codec server. The UI sends a page of payloads at a time;
// Temporal refuses single payloads over 2 MiB, so 16 MiB is generous.
const (
	MaxRequestBytes   = 16 << 20
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 2 * time.Minute
	ShutdownTimeout   = 10 * time.Second
)

// HealthPath answers 200 when the server is up, for scripts and probes.
const HealthPath = "/health"

// ServerOptions configures the codec server's handler.
type ServerOptions struct {
	// AllowedOrigins are the browser origins (scheme://host:port) that may
	// call the server: the Temporal UI's. Requests from any other origin
	// are refused; requests without an Origin header (scripts, tctl) are
	// served.
	AllowedOrigins []string
	// Logger gets one line per refused or failed request; nil discards.
	Logger *slog.Logger
}

// NewHandler serves the Temporal remote codec protocol for c: POST
// .../encode and .../decode with a JSON Payloads body (the SDK's
// converter.NewPayloadCodecHTTPHandler does the work), CORS for the
// allowed origins, and GET /health.
func NewHandler(c *Codec, opts ServerOptions) http.Handler {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	codec := converter.NewPayloadCodecHTTPHandler(c)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" {
			if !slices.Contains(opts.AllowedOrigins, origin) {
				logger.Warn("codec request from an origin not allowed", "origin", origin, "path", r.URL.Path)
				http.Error(w, "origin not allowed: start the codec server with --origin "+origin, http.StatusForbidden)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Add("Vary", "Origin")
		}
		switch {
		case r.Method == http.MethodOptions:
			// The preflight the browser sends before a JSON POST.
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
		case r.URL.Path == HealthPath && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok\n"))
		case r.Method == http.MethodPost && (strings.HasSuffix(r.URL.Path, "/encode") || strings.HasSuffix(r.URL.Path, "/decode")):
			r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBytes)
			rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			codec.ServeHTTP(rec, r)
			if rec.status >= 400 {
				// The SDK's handler already wrote the reason to the
				// client; it never contains a key.
				logger.Warn("codec request failed", "path", r.URL.Path, "status", rec.status, "namespace", r.Header.Get("X-Namespace"))
			}
		default:
			http.NotFound(w, r)
		}
	})
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Origin returns the origin (scheme://host[:port]) of a URL such as
// TEMPORAL_UI_URL.
func Origin(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute URL", rawURL)
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host), nil
}

// LoopbackAliases returns origin and, when its host is 127.0.0.1 or
// localhost, the same origin under the other name: a browser treats the
// two as different origins, and people type either.
func LoopbackAliases(origin string) []string {
	out := []string{origin}
	u, err := url.Parse(origin)
	if err != nil {
		return out
	}
	other := map[string]string{"127.0.0.1": "localhost", "localhost": "127.0.0.1"}[u.Hostname()]
	if other == "" {
		return out
	}
	if port := u.Port(); port != "" {
		other = net.JoinHostPort(other, port)
	}
	return append(out, u.Scheme+"://"+other)
}

// Serve runs h on ln until ctx ends, then lets requests in flight finish
// within ShutdownTimeout.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	return httpserve.Serve(ctx, ln, h, "codec server", httpserve.Timeouts{
		ReadHeader: ReadHeaderTimeout, Read: ReadTimeout, Write: WriteTimeout, Idle: IdleTimeout, Shutdown: ShutdownTimeout,
	}, logger)
}
