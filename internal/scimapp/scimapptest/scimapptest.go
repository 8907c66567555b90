package scimapptest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
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
	if opts.Wrap != nil {
		h = opts.Wrap(h)
	}
	ts.Config.Handler = h
	ts.Start()
	t.Cleanup(ts.Close)
	return &Server{URL: base, Token: token, Store: store, StoreOptions: storeOpts}
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
