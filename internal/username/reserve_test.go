package username

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/store"
	"github.com/provisio-dev/provisio/internal/testenv"
)

// testStore creates a throw-away database provisio_test_<random>, migrates
// it and drops it when the test ends, so store tables never collide with
// other runs or with a developer's data.
func testStore(t *testing.T) *pgxpool.Pool {
	t.Helper()
	url := testenv.PGURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("PostgreSQL at PG_URL is unreachable (run `make stack`): %v", err)
	}
	defer admin.Close(ctx)

	var b [6]byte
	_, _ = rand.Read(b[:])
	db := "provisio_test_" + hex.EncodeToString(b[:])
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize())
	require.NoError(t, err, "create test database")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop test database %s: %v", db, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", db, err)
		}
	})

	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	cfg.ConnConfig.Database = db
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, store.Migrate(ctx, pool))
	return pool
}

func TestReserve(t *testing.T) {
	pool := testStore(t)
	r := NewReserver(pool)
	ctx := context.Background()

	steps := []struct {
		name                 string
		empID, given, family string
		want                 string
	}{
		{"first hire gets the plain name", "E100001", "José", "Muñoz", "jose.munoz"},
		{"same employee again is stable", "E100001", "José", "Muñoz", "jose.munoz"},
		{"a name change keeps the username", "E100001", "José", "García", "jose.munoz"},
		{"namesake gets the next candidate", "E100002", "Jose", "Munoz", "jose.munoz2"},
		{"second namesake", "E100003", "JOSÉ", "MUÑOZ", "jose.munoz3"},
		{"non-Latin name falls back to the ID", "E100123", "太郎", "山田", "e100123"},
		{"reserved system name is skipped", "E100004", "", "Root", "root2"},
		{"empty everything", "E1000X5", "", "", "e1000x5"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			got, err := r.Reserve(ctx, s.empID, s.given, s.family)
			require.NoError(t, err)
			assert.Equal(t, s.want, got)
		})
	}

	t.Run("empty employee ID is refused", func(t *testing.T) {
		_, err := r.Reserve(ctx, " ", "Ada", "Lovelace")
		assert.Error(t, err)
	})

	t.Run("lookup", func(t *testing.T) {
		name, ok, err := r.Lookup(ctx, "E100002")
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, "jose.munoz2", name)
		_, ok, err = r.Lookup(ctx, "E999999")
		require.NoError(t, err)
		assert.False(t, ok)
	})
}

// TestReserveConcurrent hires many namesakes at once: every one must get a
// distinct username, and repeated concurrent calls for one employee must
// agree.
func TestReserveConcurrent(t *testing.T) {
	pool := testStore(t)
	r := NewReserver(pool)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const hires, callsPerHire = 12, 3
	type result struct {
		empID, name string
		err         error
	}
	results := make(chan result, hires*callsPerHire)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range hires {
		for range callsPerHire {
			empID := fmt.Sprintf("E2%05d", i)
			wg.Go(func() {
				<-start
				name, err := r.Reserve(ctx, empID, "Ana", "Silva")
				results <- result{empID, name, err}
			})
		}
	}
	close(start)
	wg.Wait()
	close(results)

	byEmployee := map[string]string{}
	owners := map[string]string{}
	for res := range results {
		require.NoError(t, res.err)
		if prev, ok := byEmployee[res.empID]; ok {
			assert.Equal(t, prev, res.name, "concurrent calls for %s disagree", res.empID)
		}
		byEmployee[res.empID] = res.name
		if other, ok := owners[res.name]; ok && other != res.empID {
			t.Errorf("username %q given to both %s and %s", res.name, other, res.empID)
		}
		owners[res.name] = res.empID
	}
	assert.Len(t, byEmployee, hires)
	assert.Len(t, owners, hires, "every hire gets a distinct username")
	assert.Contains(t, owners, "ana.silva")

	var rows int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM usernames`).Scan(&rows))
	assert.Equal(t, hires, rows, "one reservation per employee")
}
