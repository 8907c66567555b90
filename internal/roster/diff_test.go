package roster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/internal/hr"
)

func date(s string) hr.Date {
	d, err := hr.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// person is an active Berlin engineer; edits change the fields a case needs.
func person(id string, edits ...func(*hr.Person)) hr.Person {
	p := hr.Person{
		EmployeeID: id, GivenName: "Given", FamilyName: "Family" + id, Email: strings.ToLower(id) + "@example.com",
		Department: "Engineering", Title: "Engineer", Location: "Berlin", EmploymentType: hr.TypeEmployee,
		StartDate: date("2026-01-05"), Status: hr.StatusActive,
	}
	for _, e := range edits {
		e(&p)
	}
	return p
}

func terminated(end string) func(*hr.Person) {
	return func(p *hr.Person) { p.Status = hr.StatusTerm; p.EndDate = date(end) }
}
func managedBy(m string) func(*hr.Person) { return func(p *hr.Person) { p.ManagerID = m } }
func contractor(end string) func(*hr.Person) {
	return func(p *hr.Person) { p.EmploymentType = hr.TypeContractor; p.EndDate = date(end) }
}

// stored is the state a feed holds after syncing people at lines 2, 3, ...
func stored(people ...hr.Person) map[string]State {
	m := map[string]State{}
	for i, p := range people {
		m[p.EmployeeID] = stateOf(hr.Row{Line: i + 2, Person: p})
	}
	return m
}

func withStatus(m map[string]State, id string, s Status) map[string]State {
	st := m[id]
	st.Status = s
	m[id] = st
	return m
}

func export(people ...hr.Person) Export {
	var ex Export
	for i, p := range people {
		ex.Rows = append(ex.Rows, hr.Row{Line: i + 2, Person: p})
	}
	return ex
}

// summary renders a plan compactly: "ID:kind+kind" per step (":" alone for
// a step that only records), in order.
func summary(p Plan) []string {
	var out []string
	for _, s := range p.Steps {
		var kinds []string
		for _, c := range s.Changes {
			kinds = append(kinds, string(c.Kind))
		}
		out = append(out, s.EmployeeID+":"+strings.Join(kinds, "+"))
	}
	return out
}

func rejectedAt(p Plan) []string {
	var out []string
	for _, r := range p.Rejected {
		out = append(out, fmt.Sprintf("%d:%s", r.Line, r.EmployeeID))
	}
	return out
}

func TestDiff(t *testing.T) {
	const a, b, c, d = "E100001", "E100002", "E100003", "E100004"
	cases := []struct {
		name          string
		ex            Export
		state         map[string]State
		opt           Options
		want          []string
		wantUnchanged int
		wantRejected  []string
		wantHeld      []string
		check         func(t *testing.T, p Plan)
	}{
		{
			name: "first sync: every active row is a joiner, a terminated one is recorded only",
			ex:   export(person(a), person(b, managedBy(a)), person(c, terminated("2025-12-31"))),
			want: []string{a + ":joiner", b + ":joiner", c + ":"},
			check: func(t *testing.T, p Plan) {
				ev := p.Steps[1].Changes[0].Event
				assert.Equal(t, events.TypeHire, ev.Type)
				require.NotNil(t, ev.Person)
				assert.Equal(t, b, ev.Person.EmployeeID)
				assert.Equal(t, a, ev.Person.ManagerID)
				assert.Equal(t, StatusActive, p.Steps[1].Next.Status)
				assert.Equal(t, 3, p.Steps[1].Line)
				assert.Equal(t, StatusTerminated, p.Steps[2].Next.Status)
				assert.Contains(t, p.Steps[2].Note, "never provisioned")
			},
		},
		{
			name:          "same export again: nothing",
			ex:            export(person(a), person(b, managedBy(a)), person(c, terminated("2025-12-31"))),
			state:         withStatus(stored(person(a), person(b, managedBy(a)), person(c, terminated("2025-12-31"))), c, StatusTerminated),
			wantUnchanged: 3,
		},
		{
			name:          "a row that only moved to another line is unchanged",
			ex:            export(person(b), person(a)),
			state:         stored(person(a), person(b)),
			wantUnchanged: 2,
		},
		{
			name:  "terminated with an end date: leaver on that day",
			ex:    export(person(a, terminated("2026-12-31"))),
			state: stored(person(a)),
			want:  []string{a + ":leaver"},
			check: func(t *testing.T, p Plan) {
				ev := p.Steps[0].Changes[0].Event
				assert.Equal(t, events.Event{Type: events.TypeTerminate, EmployeeID: a, Effective: date("2026-12-31"), Reason: ReasonTerminated}, ev)
				assert.Equal(t, StatusTerminated, p.Steps[0].Next.Status)
				assert.Equal(t, 1, p.Leavers())
			},
		},
		{
			name:  "terminated without an end date: leaver now",
			ex:    export(person(a, func(p *hr.Person) { p.Status = hr.StatusTerm })),
			state: stored(person(a)),
			want:  []string{a + ":leaver"},
			check: func(t *testing.T, p Plan) {
				assert.True(t, p.Steps[0].Changes[0].Event.Effective.IsZero())
				assert.Contains(t, p.Steps[0].Changes[0].Why, "now")
			},
		},
		{
			name:          "a row gone: leaver now, kept as removed; a gone terminated person is nothing",
			ex:            export(person(a)),
			state:         withStatus(stored(person(a), person(b), person(c, terminated("2025-01-01"))), c, StatusTerminated),
			want:          []string{b + ":leaver"},
			wantUnchanged: 1,
			check: func(t *testing.T, p Plan) {
				s := p.Steps[0]
				assert.Equal(t, 0, s.Line)
				assert.Equal(t, events.Event{Type: events.TypeTerminate, EmployeeID: b, Reason: ReasonRemoved}, s.Changes[0].Event)
				assert.Equal(t, StatusRemoved, s.Next.Status)
				assert.Equal(t, person(b), s.Next.Person, "the last record is kept")
			},
		},
		{
			name:  "removed people are not leavers twice",
			ex:    export(person(a)),
			state: withStatus(stored(person(a), person(b)), b, StatusRemoved),
			// a is unchanged; b was removed already.
			wantUnchanged: 1,
		},
		{
			name:  "a removed or terminated person active again is a rehire",
			ex:    export(person(a), person(b)),
			state: withStatus(withStatus(stored(person(a, terminated("2025-01-01")), person(b)), a, StatusTerminated), b, StatusRemoved),
			want:  []string{a + ":joiner", b + ":joiner"},
			check: func(t *testing.T, p Plan) {
				assert.Contains(t, p.Steps[0].Changes[0].Why, "rehire")
				assert.Equal(t, StatusActive, p.Steps[1].Next.Status)
			},
		},
		{
			name:  "terminated stays terminated with a new end date: recorded only",
			ex:    export(person(a, terminated("2025-02-01"))),
			state: withStatus(stored(person(a, terminated("2025-01-01"))), a, StatusTerminated),
			want:  []string{a + ":"},
		},
		{
			name:  "each role attribute is a move",
			ex:    export(person(a, func(p *hr.Person) { p.Department = "Sales" }), person(b, func(p *hr.Person) { p.Title = "Lead" }), person(c, managedBy(a)), person(d, func(p *hr.Person) { p.Location = "Remote" })),
			state: stored(person(a), person(b), person(c), person(d)),
			want:  []string{a + ":mover", b + ":mover", c + ":mover", d + ":mover"},
			check: func(t *testing.T, p Plan) {
				assert.Equal(t, "department Engineering -> Sales", p.Steps[0].Changes[0].Why)
				assert.Equal(t, "manager_id (none) -> E100001", p.Steps[2].Changes[0].Why)
				ev := p.Steps[0].Changes[0].Event
				assert.Equal(t, events.TypeMove, ev.Type)
				require.NotNil(t, ev.Person)
				assert.Equal(t, "Sales", ev.Person.Department)
				assert.Empty(t, p.Steps[0].Note)
			},
		},
		{
			name:  "a rename or a new e-mail alone is recorded without an event",
			ex:    export(person(a, func(p *hr.Person) { p.FamilyName = "Newname"; p.Email = "new@example.com" })),
			state: stored(person(a)),
			want:  []string{a + ":"},
			check: func(t *testing.T, p Plan) {
				assert.Contains(t, p.Steps[0].Note, "family_name")
				assert.Contains(t, p.Steps[0].Note, "email")
				assert.Equal(t, "Newname", p.Steps[0].Next.Person.FamilyName, "the new record is stored")
			},
		},
		{
			name:  "a rename with a move: one move carries both",
			ex:    export(person(a, func(p *hr.Person) { p.Title = "Lead"; p.GivenName = "Other" })),
			state: stored(person(a)),
			want:  []string{a + ":mover"},
			check: func(t *testing.T, p Plan) {
				assert.Equal(t, "Other", p.Steps[0].Changes[0].Event.Person.GivenName)
			},
		},
		{
			name:  "a contractor's end date changed: contract end on the new date",
			ex:    export(person(a, contractor("2027-03-31"))),
			state: stored(person(a, contractor("2026-12-31"))),
			want:  []string{a + ":contract-end"},
			check: func(t *testing.T, p Plan) {
				assert.Equal(t, events.Event{Type: events.TypeTerminate, EmployeeID: a, Effective: date("2027-03-31"), Reason: ReasonContractEnd}, p.Steps[0].Changes[0].Event)
				assert.Equal(t, 0, p.Leavers(), "a contract end is not counted against the leaver cap")
			},
		},
		{
			name:  "a contractor's end date removed: recorded with a note to retract",
			ex:    export(person(a, contractor(""))),
			state: stored(person(a, contractor("2026-12-31"))),
			want:  []string{a + ":"},
			check: func(t *testing.T, p Plan) {
				assert.Contains(t, p.Steps[0].Note, "--retract")
			},
		},
		{
			name:  "an employee becomes a contractor with an end date: move, then contract end",
			ex:    export(person(a, contractor("2027-01-31"))),
			state: stored(person(a)),
			want:  []string{a + ":mover+contract-end"},
		},
		{
			name:  "an employee's end date is not a contract end",
			ex:    export(person(a, func(p *hr.Person) { p.EndDate = date("2027-01-31") })),
			state: stored(person(a)),
			want:  []string{a + ":"},
		},
		{
			name:  "unknown manager: rejected; managers in the file, stored or known elsewhere are fine",
			ex:    export(person(a, managedBy("E999999")), person(b, managedBy(c)), person(c, managedBy("E200000")), person(d, managedBy("E300000"))),
			state: stored(person("E200000")),
			opt:   Options{KnownElsewhere: map[string]bool{"E300000": true}},
			// E200000 is stored and not in the file: a leaver.
			want:         []string{b + ":joiner", c + ":joiner", d + ":joiner", "E200000:leaver"},
			wantRejected: []string{"2:" + a},
			check: func(t *testing.T, p Plan) {
				assert.Contains(t, p.Rejected[0].Reason, "unknown manager E999999")
				assert.Contains(t, p.Rejected[0].Reason, "manager_id")
			},
		},
		{
			name:  "a terminated row's unknown manager does not stop the leaver",
			ex:    export(person(a, managedBy("E999999"), terminated("2026-12-31"))),
			state: stored(person(a)),
			want:  []string{a + ":leaver"},
		},
		{
			name:         "manager loop: its active members are rejected, the rest goes on",
			ex:           export(person(a, managedBy(b)), person(b, managedBy(a)), person(c, managedBy(a)), person(d)),
			want:         []string{c + ":joiner", d + ":joiner"},
			wantRejected: []string{"2:" + a, "3:" + b},
			check: func(t *testing.T, p Plan) {
				assert.Equal(t, "manager_id: manager loop E100001 -> E100002 -> E100001", p.Rejected[0].Reason)
				assert.Equal(t, "manager_id: manager loop E100002 -> E100001 -> E100002", p.Rejected[1].Reason)
			},
		},
		{
			name:         "a loop through a stored person not in the export",
			ex:           export(person(a, managedBy(b))),
			state:        withStatus(stored(person(b, managedBy(a))), b, StatusRemoved),
			wantRejected: []string{"2:" + a},
		},
		{
			name: "a rejected row keeps its person: no leaver for a typo",
			ex: Export{
				Rows:     export(person(a)).Rows,
				Rejected: []Rejection{{Line: 3, EmployeeID: b, Reason: "start_date: bad"}},
			},
			state:         stored(person(a), person(b)),
			wantUnchanged: 1,
			wantRejected:  []string{"3:" + b},
		},
		{
			name: "a rejected row without a readable ID holds back the gone rows' leavers",
			ex: Export{
				Rows:     export(person(a, terminated("2026-12-31"))).Rows,
				Rejected: []Rejection{{Line: 3, Reason: "employee_id: bad"}},
			},
			state:        stored(person(a), person(b), person(c)),
			want:         []string{a + ":leaver"},
			wantRejected: []string{"3:"},
			wantHeld:     []string{b, c},
		},
		{
			name: "rejections come out by line",
			ex: Export{
				Rows:     export(person(a, managedBy("E999999"))).Rows,
				Rejected: []Rejection{{Line: 9, EmployeeID: c, Reason: "x"}, {Line: 5, EmployeeID: b, Reason: "y"}},
			},
			wantRejected: []string{"2:" + a, "5:" + b, "9:" + c},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state := tc.state
			if state == nil {
				state = map[string]State{}
			}
			p := Diff(tc.ex, state, tc.opt)
			assert.Equal(t, tc.want, summary(p))
			assert.Equal(t, tc.wantUnchanged, p.Unchanged, "unchanged")
			assert.Equal(t, tc.wantRejected, rejectedAt(p), "rejected")
			assert.Equal(t, tc.wantHeld, p.Held, "held")
			if tc.check != nil {
				tc.check(t, p)
			}
			assert.Equal(t, p, Diff(tc.ex, state, tc.opt), "Diff is deterministic")
		})
	}
}

func TestDiffAppliedTwiceIsEmpty(t *testing.T) {
	// Apply a plan's Next states as the sync does, then diff the same
	// export again: nothing may start the second time.
	ex := export(person("E100001"), person("E100002", managedBy("E100001")),
		person("E100003", terminated("2026-01-31")), person("E100004", contractor("2027-01-01")))
	state := stored(person("E100003"), person("E100005"))
	p := Diff(ex, state, Options{})
	require.NotEmpty(t, p.Steps)
	for _, s := range p.Steps {
		state[s.EmployeeID] = s.Next
	}
	again := Diff(ex, state, Options{})
	assert.Empty(t, again.Steps)
	assert.Equal(t, 4, again.Unchanged)
}

func TestPlanCount(t *testing.T) {
	p := Diff(export(person("E100001", terminated("2026-01-31")), person("E100002", func(p *hr.Person) { p.Title = "X" }), person("E100003")),
		stored(person("E100001"), person("E100002"), person("E100004")), Options{})
	assert.Equal(t, map[Kind]int{KindJoiner: 1, KindMover: 1, KindLeaver: 2, KindContractEnd: 0}, p.Count())
	assert.Equal(t, 2, p.Leavers())
}

func TestManagerLoopsLinearAndLong(t *testing.T) {
	// A chain of 20 000 people closed into one loop: every member is on
	// it, and the walk stays linear (this would time out if quadratic).
	const n = 20000
	rows := make([]hr.Row, n)
	for i := range n {
		rows[i] = hr.Row{Line: i + 2, Person: person(fmt.Sprintf("E%06d", i), managedBy(fmt.Sprintf("E%06d", (i+1)%n)))}
	}
	start := time.Now()
	loops := managerLoops(rows, nil)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Len(t, loops, n)
	assert.Equal(t, "E000000 -> E000001 -> E000002 -> E000003 -> E000004 -> ... -> E000000 (20000 people)", loops["E000000"])
}

func TestHashIgnoresAttributeOrder(t *testing.T) {
	p1 := person("E100001", func(p *hr.Person) { p.Attributes = map[string]string{"a": "1", "b": "2"} })
	p2 := person("E100001", func(p *hr.Person) { p.Attributes = map[string]string{"b": "2", "a": "1"} })
	assert.Equal(t, Hash(p1), Hash(p2))
	assert.NotEqual(t, Hash(p1), Hash(person("E100001")))
}
