package store

import (
	"context"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/testenv"
)

// freshDB names a database that does not exist yet and returns its URL on
// the test server; the database is dropped (if created) when the test ends.
func freshDB(t *testing.T, suffix string) (name, url string) {
	t.Helper()
	base := testenv.PGURL(t)
	name = "provisio_storetest_" + testenv.RandomLetters(8) + suffix
	url, err := config.WithDatabase(base, name)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("cleanup: drop %q: %v", name, err)
		}
	})
	require.False(t, dbExists(t, name))
	return name, url
}

func dbExists(t *testing.T, name string) bool {
	t.Helper()
	ctx := testenv.Context(t)
	conn, err := pgx.Connect(ctx, testenv.PGURL(t))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n))
	return n == 1
}

// embeddedVersions lists the migration versions shipped in the binary.
func embeddedVersions(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	require.NoError(t, err)
	require.NotEmpty(t, names)
	var out []string
	for _, n := range names {
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(n, "migrations/"), ".sql"))
	}
	sort.Strings(out)
	return out
}

// appliedVersions reads schema_migrations.
func appliedVersions(t *testing.T, pool *pgxpool.Pool) (versions []string, appliedAt []time.Time) {
	t.Helper()
	rows, err := pool.Query(testenv.Context(t), `SELECT version, applied_at FROM schema_migrations ORDER BY version`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var v string
		var at time.Time
		require.NoError(t, rows.Scan(&v, &at))
		versions = append(versions, v)
		appliedAt = append(appliedAt, at)
	}
	require.NoError(t, rows.Err())
	return versions, appliedAt
}

func TestEnsureDatabase(t *testing.T) {
	tests := []struct{ name, suffix string }{
		{"plain name", ""},
		// The name is an identifier that must be quoted, never concatenated.
		{"name needing quotes", `_Q "x"; DROP DATABASE postgres; --`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testenv.Context(t)
			name, url := freshDB(t, tt.suffix)
			require.NoError(t, EnsureDatabase(ctx, url))
			assert.True(t, dbExists(t, name), "database %q was not created", name)
			require.NoError(t, EnsureDatabase(ctx, url), "second call must be a no-op")
			assert.True(t, dbExists(t, name))
			assert.True(t, dbExists(t, "postgres"))
		})
	}
}

func TestEnsureDatabaseConcurrently(t *testing.T) {
	ctx := testenv.Context(t)
	name, url := freshDB(t, "")
	const workers = 6
	errs := make([]error, workers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range workers {
		wg.Go(func() {
			<-start
			errs[i] = EnsureDatabase(ctx, url)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "worker %d", i)
	}
	assert.True(t, dbExists(t, name))
}

func TestOpenAppliesMigrations(t *testing.T) {
	ctx := testenv.Context(t)
	name, url := freshDB(t, "")
	pool, err := Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	assert.True(t, dbExists(t, name))

	versions, _ := appliedVersions(t, pool)
	assert.Equal(t, embeddedVersions(t), versions)
	assert.Contains(t, versions, "0001_usernames")

	// The first migration's table is usable.
	_, err = pool.Exec(ctx, `INSERT INTO usernames(username, employee_id) VALUES ('ada.lovelace', 'E100001')`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO usernames(username, employee_id) VALUES ('ada.lovelace', 'E100002')`)
	assert.Error(t, err, "a username is reserved once")

	// Opening again keeps the data and applies nothing.
	pool2, err := Open(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool2.Close)
	var n int
	require.NoError(t, pool2.QueryRow(ctx, `SELECT count(*) FROM usernames`).Scan(&n))
	assert.Equal(t, 1, n)
}

func TestMigrateTwiceIsANoop(t *testing.T) {
	ctx := testenv.Context(t)
	_, url := freshDB(t, "")
	require.NoError(t, EnsureDatabase(ctx, url))
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	require.NoError(t, Migrate(ctx, pool))
	versions, at := appliedVersions(t, pool)
	require.Equal(t, embeddedVersions(t), versions)

	require.NoError(t, Migrate(ctx, pool))
	versions2, at2 := appliedVersions(t, pool)
	assert.Equal(t, versions, versions2)
	assert.Equal(t, at, at2, "a second Migrate re-applied a migration")

	// The advisory lock is released: a session can take it at once.
	var got bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, migrationLock).Scan(&got))
	assert.True(t, got, "Migrate left its advisory lock held")
	_, _ = pool.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
}

func TestMigrateConcurrently(t *testing.T) {
	ctx := testenv.Context(t)
	_, url := freshDB(t, "")
	require.NoError(t, EnsureDatabase(ctx, url))
	// One pool per goroutine, as several workers starting at once would.
	const workers = 5
	pools := make([]*pgxpool.Pool, workers)
	for i := range pools {
		p, err := pgxpool.New(ctx, url)
		require.NoError(t, err)
		t.Cleanup(p.Close)
		pools[i] = p
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range workers {
		wg.Go(func() {
			<-start
			errs[i] = Migrate(ctx, pools[i])
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "worker %d", i)
	}
	versions, _ := appliedVersions(t, pools[0])
	assert.Equal(t, embeddedVersions(t), versions)
}

func TestErrorsHideThePassword(t *testing.T) {
	const secret = "s3cretPW"
	base := testenv.PGURL(t)
	cfg, err := pgx.ParseConfig(base)
	require.NoError(t, err)
	host := cfg.Host
	tests := []struct {
		name string
		url  string
		want string // fragment of the error
	}{
		{"unparseable URL", "postgres://u:" + secret + "@" + host + ":notaport/db", "cannot parse the PostgreSQL URL"},
		{"bad escape", "postgres://u:" + secret + "%zz@" + host + "/db", "cannot parse the PostgreSQL URL"},
		{"unreachable server", "postgres://u:" + secret + "@127.0.0.1:1/provisio?connect_timeout=2", "connect to PostgreSQL at 127.0.0.1:1"},
		{"unreachable server, key=value", "host=127.0.0.1 port=1 user=u password=" + secret + " dbname=provisio connect_timeout=2", "connect to PostgreSQL"},
		{"unknown role", "postgres://nosuchrole_" + testenv.RandomLetters(6) + ":" + secret + "@" + host + ":" + strconv.Itoa(int(cfg.Port)) + "/provisio?sslmode=disable", "connect to PostgreSQL"},
		{"no database named", "postgres://u:" + secret + "@" + host + ":" + strconv.Itoa(int(cfg.Port)) + "?sslmode=disable", "names no database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testenv.Context(t)
			err := EnsureDatabase(ctx, tt.url)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), secret)

			pool, err := Open(ctx, tt.url)
			require.Error(t, err)
			assert.Nil(t, pool)
			assert.NotContains(t, err.Error(), secret)
		})
	}
}
