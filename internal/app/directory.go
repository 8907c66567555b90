package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/internal/hr"
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
// directory empty (approvals then cannot escalate, and say so in their
// steps); a file that is not a roster stops the worker from starting. Bad
// rows are skipped with a warning, like the rest of the roster tooling does.
func loadRosterDirectory(path string, logger *slog.Logger) (*rosterDirectory, error) {
	d := &rosterDirectory{people: map[string]rosterEntry{}}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		logger.Warn("HR roster not found: approval requests cannot escalate to the approver's manager", "file", path)
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

// ManagerOf implements activities.Directory. A terminated manager cannot
// decide anything, so it walks up to the nearest active one; a loop in the
// reporting lines ends the walk with nobody.
func (d *rosterDirectory) ManagerOf(_ context.Context, employeeID string) (string, bool, error) {
	p, ok := d.people[employeeID]
	if !ok {
		return "", false, nil
	}
	seen := map[string]bool{employeeID: true}
	for id := p.managerID; id != "" && !seen[id]; {
		seen[id] = true
		m, ok := d.people[id]
		if !ok || m.active {
			// A manager HR names but the export lacks is still the best
			// person to ask.
			return id, true, nil
		}
		id = m.managerID
	}
	return "", true, nil
}

// Person implements activities.PersonDirectory: the person's roster row as
// the worker read it at start.
func (d *rosterDirectory) Person(_ context.Context, employeeID string) (hr.Person, bool, error) {
	p, ok := d.people[employeeID]
	return p.person, ok, nil
}
