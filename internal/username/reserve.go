package username

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// MaxAttempts bounds how many candidates Reserve tries before giving up, so
// a broken store cannot spin forever.
const MaxAttempts = 1000

// ErrExhausted is returned when every candidate Reserve tried was taken or
// reserved.
var ErrExhausted = errors.New("no free username candidate")

// Reserver hands out usernames and remembers them in the usernames table
// (see internal/store). It is safe for concurrent use by many goroutines and
// processes: uniqueness is enforced by the table's keys, not by locks here.
type Reserver struct {
	// Pool reaches the project's store database, already migrated.
	Pool *pgxpool.Pool
}

// NewReserver returns a Reserver on pool.
func NewReserver(pool *pgxpool.Pool) *Reserver { return &Reserver{Pool: pool} }

// Reserve returns the username of the employee: the one reserved earlier if
// there is one (a username is derived once and never changes with the
// person's name), otherwise the first free candidate of Derive(given,
// family, employeeID), which it records. Two concurrent calls for different
// employees with the same name get different usernames; concurrent calls for
// the same employee get the same one.
func (r *Reserver) Reserve(ctx context.Context, employeeID, given, family string) (string, error) {
	if strings.TrimSpace(employeeID) == "" {
		return "", errors.New("reserve username: employee ID is empty")
	}
	if name, ok, err := r.Lookup(ctx, employeeID); err != nil || ok {
		return name, err
	}
	attempts := 0
	for cand := range Candidates(Derive(given, family, employeeID)) {
		if attempts++; attempts > MaxAttempts {
			break
		}
		if IsReserved(cand) {
			continue
		}
		// ON CONFLICT DO NOTHING covers both keys: a taken username (try the
		// next candidate) and a concurrent reservation for this same
		// employee (return theirs). The insert waits for a competing
		// uncommitted insert of the same key, so the answer is final.
		var got string
		err := r.Pool.QueryRow(ctx, `INSERT INTO usernames (username, employee_id) VALUES ($1, $2)
			ON CONFLICT DO NOTHING RETURNING username`, cand, employeeID).Scan(&got)
		switch {
		case err == nil:
			return got, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return "", fmt.Errorf("reserve username for %s: %w", employeeID, err)
		}
		if name, ok, err := r.Lookup(ctx, employeeID); err != nil || ok {
			return name, err
		}
	}
	return "", fmt.Errorf("reserve username for %s: %w after %d attempts", employeeID, ErrExhausted, MaxAttempts)
}

// Lookup returns the username reserved for employeeID, and false if none is.
func (r *Reserver) Lookup(ctx context.Context, employeeID string) (string, bool, error) {
	var name string
	err := r.Pool.QueryRow(ctx, `SELECT username FROM usernames WHERE employee_id = $1`, employeeID).Scan(&name)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("look up username of %s: %w", employeeID, err)
	}
	return name, true, nil
}

// IsReserved reports whether name belongs to well-known system or service
// accounts that a person must never receive, even when their name spells it
// (a person called "Root" gets root2).
func IsReserved(name string) bool {
	switch name {
	case "root", "admin", "administrator", "postgres", "daemon", "bin", "sys",
		"system", "nobody", "operator", "guest", "support", "security",
		"www-data", "mail", "postmaster", "hostmaster", "webmaster", "abuse",
		"noreply", "no-reply", "temporal", "provisio", "ldap", "scim", "user":
		return true
	}
	return false
}
