package webhook

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/store"
	"github.com/provisio-dev/provisio/internal/testenv"
)

// openFreshStore opens a store in a database of its own, migrated, and
// drops it when the test ends.
func openFreshStore(t *testing.T) *PGReplays {
	t.Helper()
	base := testenv.PGURL(t)
	name := "provisio_webhooktest_" + testenv.RandomLetters(8)
	url, err := config.WithDatabase(base, name)
	require.NoError(t, err)
	pool, err := store.Open(testenv.Context(t), url)
	require.NoError(t, err)
	t.Cleanup(func() {
		pool.Close()
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
	return NewPGReplays(pool)
}

func TestPGReplaysRememberForgetPrune(t *testing.T) {
	s := openFreshStore(t)
	ctx := testenv.Context(t)
	later := time.Now().Add(Window)

	fresh, err := s.Remember(ctx, "aa", later)
	require.NoError(t, err)
	assert.True(t, fresh)
	fresh, err = s.Remember(ctx, "aa", later)
	require.NoError(t, err)
	assert.False(t, fresh, "the second time is a replay")

	// A second instance (another store on the same database) agrees.
	other := NewPGReplays(s.pool)
	fresh, err = other.Remember(ctx, "aa", later)
	require.NoError(t, err)
	assert.False(t, fresh)

	require.NoError(t, s.Forget(ctx, "aa"))
	fresh, err = s.Remember(ctx, "aa", later)
	require.NoError(t, err)
	assert.True(t, fresh, "a forgotten signature may come again")

	_, err = s.Remember(ctx, "old", time.Now().Add(-time.Minute))
	require.NoError(t, err)
	n, err := s.Prune(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "only the expired signature goes")
	fresh, err = s.Remember(ctx, "aa", later)
	require.NoError(t, err)
	assert.False(t, fresh, "a live signature stays")
}

// TestPGReplaysConcurrentIdenticalRequests: of many identical requests at
// once, exactly one is fresh.
func TestPGReplaysConcurrentIdenticalRequests(t *testing.T) {
	s := openFreshStore(t)
	ctx := testenv.Context(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	freshCount := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fresh, err := s.Remember(ctx, "same", time.Now().Add(Window))
			assert.NoError(t, err)
			if fresh {
				mu.Lock()
				freshCount++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 1, freshCount)
}
