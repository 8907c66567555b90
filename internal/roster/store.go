package roster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provisio-dev/provisio/internal/hr"
)

// Store is the synced roster state in PostgreSQL (table roster_state).
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool; store.Migrate creates its tables.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// DefaultSource is the feed name when `starter sync` is given none.
const DefaultSource = "hr"

var sourceRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidateSource checks a feed name: 1 to 64 lowercase letters, digits,
// '.', '_' or '-', starting with a letter or digit.
func ValidateSource(source string) error {
	if !sourceRe.MatchString(source) {
		return &hr.FieldError{Field: "source", Reason: fmt.Sprintf("must be 1-64 of a-z 0-9 . _ - (starting with a letter or digit), got %q", clipText(source))}
	}
	return nil
}

// Known reports whether employeeID is in any synced roster (active or not).
func (s *Store) Known(ctx context.Context, employeeID string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM roster_state WHERE employee_id = $1)`, employeeID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("roster: look up %s: %w", employeeID, err)
	}
	return ok, nil
}

// KnownAmong returns which of ids are in any synced roster, in one query.
func (s *Store) KnownAmong(ctx context.Context, ids []string) (map[string]bool, error) {
	known := map[string]bool{}
	if len(ids) == 0 {
		return known, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT employee_id FROM roster_state WHERE employee_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("roster: look up %d people: %w", len(ids), err)
	}
	ks, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("roster: look up %d people: %w", len(ids), err)
	}
	for _, id := range ks {
		known[id] = true
	}
	return known, nil
}

// Load returns the stored state of one feed, keyed by employee ID.
func (s *Store) Load(ctx context.Context, source string) (map[string]State, error) {
	rows, err := s.pool.Query(ctx, `SELECT employee_id, record, hash, status, line, synced_at
		FROM roster_state WHERE source = $1`, source)
	if err != nil {
		return nil, fmt.Errorf("roster: load feed %q: %w", source, err)
	}
	states, err := pgx.CollectRows(rows, scanState)
	if err != nil {
		return nil, fmt.Errorf("roster: load feed %q: %w", source, err)
	}
	out := make(map[string]State, len(states))
	for _, st := range states {
		out[st.EmployeeID] = st
	}
	return out, nil
}

// Lookup returns a person's record from the synced rosters: an active one
// first, then the most recently synced. found is false when no feed has
// the person.
func (s *Store) Lookup(ctx context.Context, employeeID string) (State, bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT employee_id, record, hash, status, line, synced_at
		FROM roster_state WHERE employee_id = $1
		ORDER BY (status = 'active') DESC, synced_at DESC LIMIT 1`, employeeID)
	if err != nil {
		return State{}, false, fmt.Errorf("roster: look up %s: %w", employeeID, err)
	}
	st, err := pgx.CollectExactlyOneRow(rows, scanState)
	if errors.Is(err, pgx.ErrNoRows) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("roster: look up %s: %w", employeeID, err)
	}
	return st, true, nil
}

// Save stores one person's state in a feed, replacing the previous one.
func (s *Store) Save(ctx context.Context, source string, st State) error {
	if st.EmployeeID == "" || st.EmployeeID != st.Person.EmployeeID {
		return fmt.Errorf("roster: save: employee ID %q does not match its record %q", st.EmployeeID, st.Person.EmployeeID)
	}
	record, err := json.Marshal(st.Person)
	if err != nil {
		return fmt.Errorf("roster: save %s: %w", st.EmployeeID, err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO roster_state (source, employee_id, record, hash, status, line, synced_at)
		VALUES ($1, $2, $3, $4, $5, $6, now())
		ON CONFLICT (source, employee_id) DO UPDATE SET record = EXCLUDED.record, hash = EXCLUDED.hash,
			status = EXCLUDED.status, line = EXCLUDED.line, synced_at = EXCLUDED.synced_at`,
		source, st.EmployeeID, record, st.Hash, string(st.Status), st.Line)
	if err != nil {
		return fmt.Errorf("roster: save %s in feed %q: %w", st.EmployeeID, source, err)
	}
	return nil
}

// syncLockClass is the first key of the advisory locks that keep two syncs
// of one feed apart ("rost"); the second is the feed name's hash.
const syncLockClass = 0x726f7374

// ErrBusy means another sync of the same feed is running.
var ErrBusy = errors.New("another sync of this feed is running")

// Lock takes the feed's sync lock for the life of the returned release
// function, or fails with ErrBusy at once. Two syncs of one feed at the
// same time would compute their changes from the same state and start the
// same events twice.
func (s *Store) Lock(ctx context.Context, source string) (release func(), err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("roster: lock feed %q: %w", source, err)
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, syncLockClass, source).Scan(&got); err != nil {
		conn.Release()
		return nil, fmt.Errorf("roster: lock feed %q: %w", source, err)
	}
	if !got {
		conn.Release()
		return nil, fmt.Errorf("feed %q: %w", source, ErrBusy)
	}
	return func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, hashtext($2))`, syncLockClass, source)
		conn.Release()
	}, nil
}

func scanState(row pgx.CollectableRow) (State, error) {
	var st State
	var record []byte
	var status string
	if err := row.Scan(&st.EmployeeID, &record, &st.Hash, &status, &st.Line, &st.SyncedAt); err != nil {
		return State{}, err
	}
	if err := json.Unmarshal(record, &st.Person); err != nil {
		return State{}, fmt.Errorf("stored record of %s: %w", st.EmployeeID, err)
	}
	st.Status = Status(status)
	return st, nil
}

// clipText shortens s for an error message.
func clipText(s string) string {
	const limit = 40
	r := []rune(s)
	if len(r) <= limit {
		return s
	}
	return string(r[:limit]) + "..."
}
