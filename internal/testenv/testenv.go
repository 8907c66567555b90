package testenv

import (
	"context"
	"crypto/rand"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provisio-dev/provisio/internal/config"
)

// Getenv returns the environment variable key, or def when it is unset or
// empty.
func Getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// PGURL returns PG_URL (or the local default) and fails the test when the
// server does not answer: an integration test never skips silently.
func PGURL(t testing.TB) string {
	t.Helper()
	url := Getenv("PG_URL", config.DefaultPGURL)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("PostgreSQL at PG_URL is unreachable (run `make stack`): %v", err)
	}
	_ = conn.Close(ctx)
	return url
}

// Context is a context that ends after a minute or with the test.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// RandomLetters returns n random lowercase letters, for names no other run
// uses.
func RandomLetters(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = 'a' + b[i]%26
	}
	return string(b)
}
