package scimapptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provisio-dev/provisio/internal/scimapp"
)

// DefaultPGURL is used when PG_URL is unset.
const DefaultPGURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// Database is the database test schemas are created in.
const Database = "scimdemo_test"

// Options configures Start.
type Options struct {
	// Wrap, when set, wraps the app's handler: fault injection, request
	// recording or response rewriting in front of the real server.
	Wrap func(http.Handler) http.Handler
	// IgnoreDeactivate makes the app behave like the SaaS products that
	// accept a deactivation and do not apply it: a PATCH (op in any case,
	// with path "active" or a path-less value holding "active") or a PUT of
	// a User that sets active to false is answered with success as usual,
	// but the user stays active. Every other change, enabling included,
	// works. Tests of verified revocation use it to prove a read-back
	// catches the ignored disable. It sits between Wrap and the app, so a
	// Wrap recorder sees the requests as the client sent them.
	IgnoreDeactivate bool
}

// Server is a running demo app.
type Server struct {
	// URL is the SCIM base URL, ending in /scim/v2.
	URL string
	// Token is the bearer token the server accepts.
	Token string
	// Store is the server's store, for out-of-band checks such as CanLogin.
	Store *scimapp.Store
	// StoreOptions opens the same data again (a restart).
	StoreOptions scimapp.Options
}

// PGURL returns PG_URL, or DefaultPGURL when unset.
func PGURL() string {
	if u := os.Getenv("PG_URL"); u != "" {
		return u
	}
	return DefaultPGURL
}

// StoreOptions returns options for a fresh PostgreSQL schema of the test's
// own in Database, dropped when the test ends. It fails the test, telling
// the user to run `make stack`, when PostgreSQL is unreachable.
func StoreOptions(t testing.TB) scimapp.Options {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pgURL := PGURL()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatalf("PostgreSQL is unreachable through PG_URL (%v): run `make stack`", err)
	}
	_ = conn.Close(ctx)
	opts := scimapp.Options{URL: pgURL, Database: Database, Schema: "scimtest_" + randomHex(t, 6)}
	t.Cleanup(func() { dropSchema(t, pgURL, opts.Schema) })
	return opts
}

// Start runs the app for the rest of the test. It fails the test, telling
// the user to run `make stack`, when PostgreSQL is unreachable.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	storeOpts := StoreOptions(t)
	store, err := scimapp.Open(ctx, storeOpts)
	if err != nil {
		t.Fatalf("open scimapp store: %v", err)
	}
	t.Cleanup(store.Close)

	token := "test-token-" + randomHex(t, 8)
	ts := httptest.NewUnstartedServer(nil)
	base := "http://" + ts.Listener.Addr().String() + scimapp.BasePath
	h, err := scimapp.NewHandler(scimapp.HandlerOptions{
		Store:   store,
		Token:   token,
		BaseURL: base,
		Logger:  slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatalf("build scimapp handler: %v", err)
	}
	if opts.IgnoreDeactivate {
		h = ignoreDeactivate(h)
	}
	if opts.Wrap != nil {
		h = opts.Wrap(h)
	}
	ts.Config.Handler = h
	ts.Start()
	t.Cleanup(ts.Close)
	return &Server{URL: base, Token: token, Store: store, StoreOptions: storeOpts}
}

// coreUserActive is the fully qualified name of a User's "active".
const coreUserActive = "urn:ietf:params:scim:schemas:core:2.0:User:active"

// ignoreDeactivate drops every change of a User's active to false from
// PATCH and PUT requests before the app sees them. A PATCH left with no
// operation becomes a GET of the user, so the client still gets the 200
// and the resource a PATCH answers with.
func ignoreDeactivate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method != http.MethodPatch && r.Method != http.MethodPut) || !isUserResource(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			http.Error(w, "cannot read the request body", http.StatusBadRequest)
			return
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber() // re-encode numbers exactly as sent
		var doc map[string]any
		if dec.Decode(&doc) == nil {
			keep := true
			if r.Method == http.MethodPatch {
				keep = dropPatchDeactivate(doc)
			} else {
				dropDeactivate(doc)
			}
			if !keep {
				r = r.Clone(r.Context())
				r.Method, r.Body, r.ContentLength = http.MethodGet, http.NoBody, 0
				r.Header.Del("Content-Type")
				next.ServeHTTP(w, r)
				return
			}
			if b, err := json.Marshal(doc); err == nil {
				body = b
			}
		}
		// A body that is not a JSON object goes on unchanged, for the app
		// to refuse as it would.
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		next.ServeHTTP(w, r)
	})
}

// isUserResource reports whether path names one User, /scim/v2/Users/{id}.
func isUserResource(path string) bool {
	id, ok := strings.CutPrefix(path, scimapp.BasePath+"/Users/")
	return ok && id != "" && !strings.Contains(id, "/")
}

// dropPatchDeactivate removes from a PatchOp message the operations, or
// the parts of a path-less operation's value, that set active to false. It
// reports whether any operation is left.
func dropPatchDeactivate(doc map[string]any) bool {
	key, ops := field(doc, "Operations")
	list, ok := ops.([]any)
	if !ok {
		return true // malformed: the app refuses it
	}
	kept := list[:0]
	for _, e := range list {
		op, ok := e.(map[string]any)
		if !ok {
			kept = append(kept, e)
			continue
		}
		_, name := field(op, "op")
		_, path := field(op, "path")
		_, value := field(op, "value")
		if s, _ := name.(string); !strings.EqualFold(s, "add") && !strings.EqualFold(s, "replace") {
			kept = append(kept, e)
			continue
		}
		if p, ok := path.(string); ok {
			if !isActivePath(p) || !isFalse(value) {
				kept = append(kept, e)
			}
			continue
		}
		if m, ok := value.(map[string]any); ok {
			dropDeactivate(m)
			if len(m) == 0 {
				continue
			}
		}
		kept = append(kept, e)
	}
	doc[key] = kept
	return len(kept) > 0
}

// dropDeactivate removes from a User document (or a path-less PATCH value)
// an active attribute that is false.
func dropDeactivate(m map[string]any) {
	for k, v := range m {
		if isActivePath(k) && isFalse(v) {
			delete(m, k)
		}
	}
}

// field finds a key ignoring case, as SCIM attribute names are.
func field(m map[string]any, name string) (string, any) {
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return k, v
		}
	}
	return name, nil
}

func isActivePath(p string) bool {
	p = strings.TrimSpace(p)
	return strings.EqualFold(p, "active") || strings.EqualFold(p, coreUserActive)
}

// isFalse reads false as a JSON boolean or as the string some clients send.
func isFalse(v any) bool {
	switch v := v.(type) {
	case bool:
		return !v
	case string:
		return strings.EqualFold(strings.TrimSpace(v), "false")
	}
	return false
}

func dropSchema(t testing.TB, pgURL, schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := pgx.ParseConfig(pgURL)
	if err != nil {
		t.Logf("drop test schema: %v", err)
		return
	}
	cfg.Database = Database
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Logf("drop test schema: %v", err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
		t.Logf("drop test schema %s: %v", schema, err)
	}
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

// testWriter sends the server's warnings and errors to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("scimdemo: %s", p)
	return len(p), nil
}
