package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/roster"
	"github.com/provisio-dev/provisio/internal/username"
)

// peopleLookupTimeout bounds one question to the store, so a hung
// database fails the command rather than hanging it.
const peopleLookupTimeout = 10 * time.Second

// openPeople opens the events.People a trigger checks managers and
// employees against, and what releases it; replaceable so tests need no
// store.
type openPeople func(ctx context.Context, cfg config.Config) (events.People, func(), error)

// openStorePeople is openPeople on the project's store. The pool connects
// on first use, so a hire with no manager never touches the database.
func openStorePeople(ctx context.Context, cfg config.Config) (events.People, func(), error) {
	pcfg, err := pgxpool.ParseConfig(cfg.StoreURL)
	if err != nil {
		return nil, nil, fmt.Errorf("store URL %s: cannot parse it", config.Redact(cfg.StoreURL))
	}
	pcfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	return newStorePeople(pool, cfg.RosterFile), pool.Close, nil
}

// newStorePeople is the people HR and this system know: the roster file,
// the usernames reserved at onboarding, and the synced roster.
func newStorePeople(pool *pgxpool.Pool, rosterFile string) *hrPeople {
	return &hrPeople{rosterFile: rosterFile, usernames: username.NewReserver(pool), synced: roster.NewStore(pool)}
}

// hrPeople says yes when anyone of its sources knows the ID. A manager
// named by HR must be someone HR knows; an employee moved, terminated or
// given access must be someone HR or this system knows.
type hrPeople struct {
	// rosterFile is the HR roster CSV (PROVISIO_ROSTER); a missing file
	// knows nobody, as for the worker.
	rosterFile string
	usernames  interface {
		Lookup(ctx context.Context, employeeID string) (string, bool, error)
	}
	synced events.People
}

var _ events.People = (*hrPeople)(nil)

// Known asks the cheapest source first and stops at the first yes; an
// error of any source that had to be asked is an error, never a no.
func (p *hrPeople) Known(ctx context.Context, employeeID string) (bool, error) {
	if ok, err := inRosterFile(p.rosterFile, employeeID); err != nil || ok {
		return ok, err
	}
	ctx, cancel := context.WithTimeout(ctx, peopleLookupTimeout)
	defer cancel()
	if p.usernames != nil {
		_, ok, err := p.usernames.Lookup(ctx, employeeID)
		if err != nil {
			return false, fmt.Errorf("username store: %w", err)
		}
		if ok {
			return true, nil
		}
	}
	if p.synced != nil {
		ok, err := p.synced.Known(ctx, employeeID)
		if err != nil {
			return false, fmt.Errorf("synced roster: %w", err)
		}
		return ok, nil
	}
	return false, nil
}

// inRosterFile reads the roster file each time: it is small, and a
// long-running `serve` must see HR's newest export. A missing file knows
// nobody.
func inRosterFile(path, employeeID string) (bool, error) {
	if path == "" {
		return false, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("HR roster %s: %w", path, err)
	}
	defer f.Close()
	rows, _, err := hr.ReadRoster(f)
	if err != nil {
		return false, fmt.Errorf("HR roster %s: %w", path, err)
	}
	for _, r := range rows {
		if r.Person.EmployeeID == employeeID {
			return true, nil
		}
	}
	return false, nil
}

// alsoInRoster opens the people of open and adds those of one more roster
// file: `hire --roster FILE` takes the person from FILE, and a manager in
// the same export is someone HR knows.
func alsoInRoster(open openPeople, file string) openPeople {
	return func(ctx context.Context, cfg config.Config) (events.People, func(), error) {
		next, closeNext, err := open(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
		return rosterAndPeople{file: file, next: next}, closeNext, nil
	}
}

type rosterAndPeople struct {
	file string
	next events.People
}

func (r rosterAndPeople) Known(ctx context.Context, employeeID string) (bool, error) {
	if ok, err := inRosterFile(r.file, employeeID); err != nil || ok {
		return ok, err
	}
	return r.next.Known(ctx, employeeID)
}
