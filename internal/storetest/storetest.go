// Package storetest gives tests a PostgreSQL database of their own,
// dropped when the test ends: the ledger is append-only and the roster and
// reconciliation tables are shared state, so tests must not write them in
// the project's database. PostgreSQL must be up: tests fail, never skip.
//
// It lives apart from internal/testenv because it imports internal/store,
// whose own tests import testenv.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/store"
	"github.com/provisio-dev/provisio/internal/testenv"
)

// Database returns the URL of a database named provisio_<label>_<random>,
// not yet created, that is dropped when the test ends.
func Database(t testing.TB, label string) string {
	t.Helper()
	base := testenv.PGURL(t)
	name := "provisio_" + label + "_" + testenv.RandomLetters(10)
	url, err := config.WithDatabase(base, name)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	return url
}

// Pool opens a migrated database of the test's own (see Database).
func Pool(t testing.TB, label string) *pgxpool.Pool {
	t.Helper()
	pool, err := store.Open(testenv.Context(t), Database(t, label))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}
