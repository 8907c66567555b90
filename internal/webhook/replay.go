package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ReplayStore remembers the signatures of accepted requests for as long
// as their timestamps are fresh.
type ReplayStore interface {
	// Remember records signature until expires, and returns false if it
	// was already recorded: the request is a replay.
	Remember(ctx context.Context, signature string, expires time.Time) (bool, error)
	// Forget drops signature, so a request that failed on the server's
	// side may be sent again as it was.
	Forget(ctx context.Context, signature string) error
}

// PGReplays is the ReplayStore in PostgreSQL (table webhook_signatures,
// migration 0004_webhook.sql), shared by every instance of the webhook and
// surviving restarts.
type PGReplays struct {
	pool *pgxpool.Pool
}

var _ ReplayStore = (*PGReplays)(nil)

// NewPGReplays returns the store on pool; store.Migrate creates its table.
func NewPGReplays(pool *pgxpool.Pool) *PGReplays { return &PGReplays{pool: pool} }

// Remember inserts the signature; the primary key decides, atomically
// across instances, which of two concurrent identical requests wins.
func (s *PGReplays) Remember(ctx context.Context, signature string, expires time.Time) (bool, error) {
	var got string
	err := s.pool.QueryRow(ctx, `INSERT INTO webhook_signatures (signature, expires_at) VALUES ($1, $2)
		ON CONFLICT DO NOTHING RETURNING signature`, signature, expires).Scan(&got)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("remember webhook signature: %w", err)
	}
	return true, nil
}

// Forget deletes the signature.
func (s *PGReplays) Forget(ctx context.Context, signature string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM webhook_signatures WHERE signature = $1`, signature); err != nil {
		return fmt.Errorf("forget webhook signature: %w", err)
	}
	return nil
}

// Prune deletes the signatures whose timestamps can no longer pass
// Verify, and returns how many it deleted. The database's clock decides,
// so instances with slightly different clocks agree.
func (s *PGReplays) Prune(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhook_signatures WHERE expires_at < now()`)
	if err != nil {
		return 0, fmt.Errorf("prune webhook signatures: %w", err)
	}
	return tag.RowsAffected(), nil
}
