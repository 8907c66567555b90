package roster

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/internal/hr"
)

// Status is where a person stands in a feed's stored state.
type Status string

// The stored statuses. Removed is a person whose row left the export: they
// were offboarded as a leaver and stay known.
const (
	StatusActive     Status = "active"
	StatusTerminated Status = "terminated"
	StatusRemoved    Status = "removed"
)

// State is the stored record of one person in one feed.
type State struct {
	EmployeeID string
	Person     hr.Person
	// Hash is Hash(Person): an equal hash means an unchanged row.
	Hash   string
	Status Status
	// Line is the export line of the last change to the record.
	Line int
	// SyncedAt is when the record was stored; the store sets it.
	SyncedAt time.Time
}

// Active reports whether the person holds (or is being given) access.
func (s State) Active() bool { return s.Status == StatusActive }

// Hash is the hex SHA-256 of p's JSON. json.Marshal writes struct fields in
// a fixed order and sorts map keys, so equal records hash equal.
func Hash(p hr.Person) string {
	data, _ := json.Marshal(p) // hr.Person always marshals
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// stateOf is the state a good row leads to.
func stateOf(r hr.Row) State {
	st := StatusActive
	if r.Person.Status == hr.StatusTerm {
		st = StatusTerminated
	}
	return State{EmployeeID: r.Person.EmployeeID, Person: r.Person, Hash: Hash(r.Person), Status: st, Line: r.Line}
}

// Kind is the lifecycle meaning of a Change.
type Kind string

// The kinds of change a sync starts. A contract end is a terminate event
// dated on a contractor's new end_date: it (re)schedules their offboarding,
// which their onboarding already scheduled for the old date.
const (
	KindJoiner      Kind = "joiner"
	KindMover       Kind = "mover"
	KindLeaver      Kind = "leaver"
	KindContractEnd Kind = "contract-end"
)

// Kinds lists every Kind in a fixed order, for summaries.
var Kinds = []Kind{KindJoiner, KindMover, KindLeaver, KindContractEnd}

// Change is one HR event the export implies.
type Change struct {
	Kind  Kind
	Event events.Event
	// Why says in words what changed ("department Sales -> Finance").
	Why string
}

// Step is everything the export implies for one person: the events to
// start, in order, then the state to store once every one was accepted.
// A step without changes only records the new state (Note says why).
type Step struct {
	EmployeeID string
	// Line is the row's line; 0 for a person whose row is gone.
	Line    int
	Changes []Change
	Next    State
	// Note explains what the sync recorded without starting anything.
	Note string
}

// Plan is the outcome of Diff.
type Plan struct {
	// Steps are ordered by line, then the people whose rows are gone by
	// employee ID.
	Steps []Step
	// Unchanged counts rows equal to their stored state.
	Unchanged int
	// Rejected are the rows not applied, ordered by line: the export's bad
	// rows and rows refused here (unknown manager, manager loop).
	Rejected []Rejection
	// Held are active people whose row is gone but who are not offboarded,
	// because some rejected row's employee ID could not be read: it may be
	// theirs.
	Held []string
}

// Count returns the number of changes of each kind (every Kind present).
func (p Plan) Count() map[Kind]int {
	n := make(map[Kind]int, len(Kinds))
	for _, k := range Kinds {
		n[k] = 0
	}
	for _, s := range p.Steps {
		for _, c := range s.Changes {
			n[c.Kind]++
		}
	}
	return n
}

// Leavers is the number of leaver changes, which the sync caps.
func (p Plan) Leavers() int { return p.Count()[KindLeaver] }

// Options are what Diff needs beyond the export and the feed's state.
type Options struct {
	// KnownElsewhere holds employee IDs known outside this feed (other
	// feeds); a manager found there is not unknown.
	KnownElsewhere map[string]bool
}

// Reasons of the terminate events, kept in the workflow history.
const (
	ReasonTerminated  = "HR roster sync: status terminated"
	ReasonRemoved     = "HR roster sync: row removed from the export"
	ReasonContractEnd = "HR roster sync: contract end date"
)

// Diff compares an export with the stored state of its feed and returns
// exactly the changes that follow:
//
//   - a new active row is a joiner; a new terminated row is only recorded
//     (never provisioned, nothing to undo);
//   - a known active person whose row says terminated is a leaver on the
//     row's end_date (now when empty); one whose row is gone is a leaver now;
//   - a change of department, title, manager_id, location or
//     employment_type is a mover;
//   - an active contractor's new or changed end_date is a contract end;
//   - any other change (names, e-mail, start_date, a removed end_date) is
//     recorded without an event, with a note;
//   - a person stored as terminated or removed whose row is active again is
//     a joiner (rehire);
//   - an active row whose manager is neither in the export nor known, or
//     that sits on a loop of managers, is rejected.
//
// Rejected rows change nothing, and their people are not leavers.
func Diff(ex Export, stored map[string]State, opt Options) Plan {
	plan := Plan{Rejected: slices.Clone(ex.Rejected)}
	inFile := make(map[string]bool, len(ex.Rows)+len(ex.Rejected))
	for _, r := range ex.Rows {
		inFile[r.Person.EmployeeID] = true
	}
	unidentified := false
	for _, r := range ex.Rejected {
		if r.EmployeeID == "" {
			unidentified = true
		} else {
			inFile[r.EmployeeID] = true
		}
	}

	loops := managerLoops(ex.Rows, stored)
	for _, r := range ex.Rows {
		p := r.Person
		if reason := refuse(p, inFile, stored, opt, loops); reason != "" {
			plan.Rejected = append(plan.Rejected, Rejection{Line: r.Line, EmployeeID: p.EmployeeID, Reason: reason})
			continue
		}
		old, known := stored[p.EmployeeID]
		step, changed := diffRow(r, old, known)
		if !changed {
			plan.Unchanged++
			continue
		}
		plan.Steps = append(plan.Steps, step)
	}

	for _, id := range slices.Sorted(maps.Keys(stored)) {
		old := stored[id]
		if inFile[id] || !old.Active() {
			continue
		}
		if unidentified {
			plan.Held = append(plan.Held, id)
			continue
		}
		next := old
		next.Status = StatusRemoved
		plan.Steps = append(plan.Steps, Step{
			EmployeeID: id,
			Changes: []Change{{
				Kind:  KindLeaver,
				Event: events.Event{Type: events.TypeTerminate, EmployeeID: id, Reason: ReasonRemoved},
				Why:   "row removed from the export: access ends now",
			}},
			Next: next,
		})
	}
	slices.SortStableFunc(plan.Rejected, func(a, b Rejection) int { return cmp.Compare(a.Line, b.Line) })
	return plan
}

// refuse returns why an active row cannot be applied, or "". The manager
// of a terminated row is irrelevant: nothing will be asked of them.
func refuse(p hr.Person, inFile map[string]bool, stored map[string]State, opt Options, loops map[string]string) string {
	if p.Status != hr.StatusActive {
		return ""
	}
	if path, ok := loops[p.EmployeeID]; ok {
		return "manager_id: manager loop " + path
	}
	m := p.ManagerID
	if m == "" || inFile[m] || opt.KnownElsewhere[m] {
		return ""
	}
	if _, ok := stored[m]; ok {
		return ""
	}
	return fmt.Sprintf("manager_id: unknown manager %s (not in this export and never synced)", m)
}

// diffRow works out the step of one good row against its stored state.
func diffRow(r hr.Row, old State, known bool) (Step, bool) {
	p := r.Person
	next := stateOf(r)
	step := Step{EmployeeID: p.EmployeeID, Line: r.Line, Next: next}
	hire := func(why string) (Step, bool) {
		step.Changes = []Change{{Kind: KindJoiner, Event: events.Event{Type: events.TypeHire, Person: &p}, Why: why}}
		return step, true
	}
	switch {
	case !known && next.Active():
		return hire("new in the export")
	case !known:
		step.Note = "new row already terminated: never provisioned, recorded only"
		return step, true
	case !old.Active() && next.Active():
		return hire("active again after " + string(old.Status) + ": rehire")
	case !old.Active():
		if old.Status == next.Status && old.Hash == next.Hash {
			return step, false
		}
		step.Note = "still terminated: recorded only"
		return step, true
	case !next.Active():
		why := "status terminated: access ends now"
		if !p.EndDate.IsZero() {
			why = "status terminated: access ends when " + p.EndDate.String() + " ends"
		}
		step.Changes = []Change{{
			Kind: KindLeaver,
			Event: events.Event{Type: events.TypeTerminate, EmployeeID: p.EmployeeID,
				Effective: p.EndDate, Reason: ReasonTerminated},
			Why: why,
		}}
		return step, true
	case old.Hash == next.Hash:
		return step, false
	}

	// Both active, something changed.
	o := old.Person
	if role := changed(o, p, roleFields); len(role) > 0 {
		step.Changes = append(step.Changes, Change{
			Kind: KindMover, Event: events.Event{Type: events.TypeMove, Person: &p}, Why: strings.Join(role, "; "),
		})
	}
	wasContract := o.EmploymentType == hr.TypeContractor && !o.EndDate.IsZero()
	isContract := p.EmploymentType == hr.TypeContractor && !p.EndDate.IsZero()
	var notes []string
	switch {
	case isContract && (!wasContract || !o.EndDate.Equal(p.EndDate.Time)):
		step.Changes = append(step.Changes, Change{
			Kind: KindContractEnd,
			Event: events.Event{Type: events.TypeTerminate, EmployeeID: p.EmployeeID,
				Effective: p.EndDate, Reason: ReasonContractEnd},
			Why: fmt.Sprintf("contract ends %s (was %s)", p.EndDate, orNone(o.EndDate.String())),
		})
	case wasContract && !isContract:
		notes = append(notes, fmt.Sprintf("contract end %s no longer applies: the offboarding scheduled for it stays; withdraw it with `starter terminate %s --retract`", o.EndDate, p.EmployeeID))
	}
	if other := changed(o, p, otherFields); len(other) > 0 {
		notes = append(notes, strings.Join(other, "; ")+": recorded, no event (a rename reaches the applications with the next move)")
	}
	step.Note = strings.Join(notes, "; ")
	return step, true
}

// field is one compared attribute of a person.
type field struct {
	name string
	get  func(hr.Person) string
}

// roleFields are the attributes policy matches on: a change is a mover.
var roleFields = []field{
	{"department", func(p hr.Person) string { return p.Department }},
	{"title", func(p hr.Person) string { return p.Title }},
	{"manager_id", func(p hr.Person) string { return p.ManagerID }},
	{"location", func(p hr.Person) string { return p.Location }},
	{"employment_type", func(p hr.Person) string { return p.EmploymentType }},
}

// otherFields change no access: they are recorded only. end_date is
// handled as a contract end.
var otherFields = []field{
	{"given_name", func(p hr.Person) string { return p.GivenName }},
	{"family_name", func(p hr.Person) string { return p.FamilyName }},
	{"email", func(p hr.Person) string { return p.Email }},
	{"start_date", func(p hr.Person) string { return p.StartDate.String() }},
}

// changed describes each field that differs between a and b.
func changed(a, b hr.Person, fields []field) []string {
	var out []string
	for _, f := range fields {
		if va, vb := f.get(a), f.get(b); va != vb {
			out = append(out, fmt.Sprintf("%s %s -> %s", f.name, orNone(va), orNone(vb)))
		}
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// managerLoops finds the people on a loop of managers (A manages B manages
// A), over the export's rows and, for people not in it, the stored
// records. It returns each one's loop as text ("E1 -> E2 -> E1"). Each
// person is visited once, so a deep hierarchy costs linear time.
func managerLoops(rows []hr.Row, stored map[string]State) map[string]string {
	mgr := make(map[string]string, len(rows)+len(stored))
	for id, s := range stored {
		mgr[id] = s.Person.ManagerID
	}
	for _, r := range rows {
		mgr[r.Person.EmployeeID] = r.Person.ManagerID
	}
	const (
		unvisited = iota
		onPath
		done
	)
	mark := make(map[string]int, len(mgr))
	loops := map[string]string{}
	for _, start := range slices.Sorted(maps.Keys(mgr)) {
		var path []string
		cur := start
		for cur != "" && mark[cur] == unvisited {
			mark[cur] = onPath
			path = append(path, cur)
			cur = mgr[cur]
		}
		if cur != "" && mark[cur] == onPath {
			cycle := path[slices.Index(path, cur):]
			for i, id := range cycle {
				loops[id] = loopText(cycle, i)
			}
		}
		for _, id := range path {
			mark[id] = done
		}
	}
	return loops
}

// loopText renders the loop starting at cycle[from] and back to it,
// shortened when it is long. It costs O(1) per member, not O(len(cycle)).
func loopText(cycle []string, from int) string {
	const show = 5
	n := len(cycle)
	var b strings.Builder
	for i := 0; i < min(n, show); i++ {
		b.WriteString(cycle[(from+i)%n])
		b.WriteString(" -> ")
	}
	if n > show {
		b.WriteString("... -> ")
	}
	b.WriteString(cycle[from])
	if n > show {
		fmt.Fprintf(&b, " (%d people)", n)
	}
	return b.String()
}
