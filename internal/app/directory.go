package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/roster"
)

// rosterDirectory answers activities.Directory from an HR roster export,
// read once when the worker starts: who reports to whom changes rarely, and
// an escalation that names last week's manager is still a reasonable one.
type rosterDirectory struct {
	// people maps an employee ID to its row.
	people map[string]rosterEntry
}

type rosterEntry struct {
	managerID string
	active    bool
	// person is the whole record, which policy needs to route the
	// approvals of a temporary-access request.
	person hr.Person
}

var (
	_ activities.Directory       = (*rosterDirectory)(nil)
	_ activities.PersonDirectory = (*rosterDirectory)(nil)
)

// loadRosterDirectory reads the roster at path. A missing file leaves the
// directory empty (approvals of people no sync has seen then cannot
// escalate, and say so in their steps); a file that is not a roster stops the worker from starting. Bad
// rows are skipped with a warning, like the rest of the roster tooling does.
func loadRosterDirectory(path string, logger *slog.Logger) (*rosterDirectory, error) {
	d := &rosterDirectory{people: map[string]rosterEntry{}}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		logger.Warn("HR roster file not found: approval requests escalate only through the synced roster (starter sync)", "file", path)
		return d, nil
	}
	if err != nil {
		return nil, fmt.Errorf("HR roster %s: %w", path, err)
	}
	defer f.Close()
	rows, bad, err := hr.ReadRoster(f)
	if err != nil {
		return nil, fmt.Errorf("HR roster %s: %w", path, err)
	}
	if len(bad) > 0 {
		logger.Warn("HR roster rows skipped", "file", path, "rows", len(bad), "first", bad[0].Error())
	}
	for _, r := range rows {
		d.people[r.Person.EmployeeID] = rosterEntry{managerID: r.Person.ManagerID, active: r.Person.Status != hr.StatusTerm, person: r.Person}
	}
	logger.Info("HR roster loaded", "file", path, "people", len(d.people))
	return d, nil
}

// ManagerOf implements activities.Directory from the roster file alone.
func (d *rosterDirectory) ManagerOf(ctx context.Context, employeeID string) (string, bool, error) {
	return managerOf(ctx, employeeID, d.entry)
}

// Person implements activities.PersonDirectory: the person's roster row as
// the worker read it at start.
func (d *rosterDirectory) Person(_ context.Context, employeeID string) (hr.Person, bool, error) {
	p, ok := d.people[employeeID]
	return p.person, ok, nil
}

func (d *rosterDirectory) entry(_ context.Context, employeeID string) (rosterEntry, bool, error) {
	e, ok := d.people[employeeID]
	return e, ok, nil
}

// managerOf walks up the reporting line from employeeID with lookup. A
// terminated manager cannot decide anything, so it walks up to the nearest
// active one; a loop in the reporting lines ends the walk with nobody.
func managerOf(ctx context.Context, employeeID string, lookup func(context.Context, string) (rosterEntry, bool, error)) (string, bool, error) {
	p, ok, err := lookup(ctx, employeeID)
	if err != nil || !ok {
		return "", false, err
	}
	seen := map[string]bool{employeeID: true}
	for id := p.managerID; id != "" && !seen[id]; {
		seen[id] = true
		m, ok, err := lookup(ctx, id)
		if err != nil {
			return "", false, err
		}
		if !ok || m.active {
			// A manager HR names but the export lacks is still the best
			// person to ask.
			return id, true, nil
		}
		id = m.managerID
	}
	return "", true, nil
}

// syncedRoster is the synced HR roster in PostgreSQL (roster.Store), which
// `starter sync` keeps current.
type syncedRoster interface {
	Lookup(ctx context.Context, employeeID string) (roster.State, bool, error)
}

var _ syncedRoster = (*roster.Store)(nil)

// directory answers activities.Directory and PersonDirectory from the
// synced roster first, because `starter sync` keeps it current while the
// worker runs, and from the roster file (PROVISIO_ROSTER, read at start)
// for people no sync has seen. A database error is returned, not papered
// over with the file: the activity retries rather than escalate to a
// manager the file may name wrongly.
type directory struct {
	synced syncedRoster
	file   *rosterDirectory
}

var (
	_ activities.Directory       = (*directory)(nil)
	_ activities.PersonDirectory = (*directory)(nil)
)

// newDirectory is the worker's directory: the synced roster in pool, then
// the roster file at path (see loadRosterDirectory).
func newDirectory(pool *pgxpool.Pool, path string, logger *slog.Logger) (*directory, error) {
	file, err := loadRosterDirectory(path, logger)
	if err != nil {
		return nil, err
	}
	return &directory{synced: roster.NewStore(pool), file: file}, nil
}

func (d *directory) entry(ctx context.Context, employeeID string) (rosterEntry, bool, error) {
	st, ok, err := d.synced.Lookup(ctx, employeeID)
	if err != nil {
		return rosterEntry{}, false, fmt.Errorf("directory: %w", err)
	}
	if ok {
		return rosterEntry{managerID: st.Person.ManagerID, active: st.Active(), person: st.Person}, true, nil
	}
	return d.file.entry(ctx, employeeID)
}

// ManagerOf implements activities.Directory.
func (d *directory) ManagerOf(ctx context.Context, employeeID string) (string, bool, error) {
	return managerOf(ctx, employeeID, d.entry)
}

// Person implements activities.PersonDirectory.
func (d *directory) Person(ctx context.Context, employeeID string) (hr.Person, bool, error) {
	e, ok, err := d.entry(ctx, employeeID)
	return e.person, ok, err
}
