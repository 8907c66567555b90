package harness

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/verify"
	"github.com/provisio-dev/provisio/policy"
	"github.com/provisio-dev/provisio/workflows"
)

// profile is a job the generated people hold. Each one gets access in
// LDAP and SCIM, some in PostgreSQL, and none needs an approver, so every
// run can finish without a person answering.
type profile struct{ department, title, location string }

var profiles = []profile{
	{"Engineering", "Software Engineer", "Berlin"},
	{"Engineering", "SRE", "Remote"},
	{"Sales", "Account Executive", "Berlin"},
	{"Sales", "Sales Engineer", "Remote"},
	{"Support", "Support Agent", "Berlin"},
	{"Marketing", "Content Writer", "Remote"},
	{"HR", "Recruiter", "Berlin"},
	{"Finance", "Accountant", "Berlin"},
	{"Engineering", "Engineering Manager", "Berlin"},
}

// doomedProfile is the job of the partial-failure hires: it needs a
// PostgreSQL account, which the connector may not create then.
var doomedProfile = profiles[0]

var givenNames = []string{"Ada", "Barbara", "Claude", "Dennis", "Edsger", "Frances", "Grace", "Hedy", "Ivan", "Jean", "Ken", "Lynn"}

// role is what the HR events do to one generated person.
type role int

const (
	roleHire   role = iota // hired, nothing else
	roleMover              // hired, then moved to another job
	roleLeaver             // hired, then terminated once onboarded
	roleDoomed             // hired while the PostgreSQL connector may not create roles
)

func (r role) String() string {
	return [...]string{"hire", "mover", "leaver", "doomed"}[r]
}

// subject is one generated person and what happened to them.
type subject struct {
	person hr.Person
	role   role
	// moved is the person after the move (movers only).
	moved *hr.Person

	mu sync.Mutex
	// hired, moveQueued and terminated are set once Start accepted the
	// event; onboarded once the onboarding completed.
	hired, moveQueued, terminated, onboarded, released bool
}

func (s *subject) set(f func(s *subject)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *subject) get(f func(s *subject) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f(s)
}

// newPerson is an active person who started yesterday, with a name and
// e-mail unique to the employee ID.
func newPerson(id string, i int, p profile) hr.Person {
	typ := hr.TypeEmployee
	if i%4 == 3 {
		// Contractors without an end date: no automatic leaver.
		typ = hr.TypeContractor
	}
	return hr.Person{
		EmployeeID: id, GivenName: givenNames[i%len(givenNames)], FamilyName: "Chaos" + id[1:],
		Email: strings.ToLower(id) + "@example.com", Department: p.department, Title: p.title,
		Location: p.location, EmploymentType: typ, Status: hr.StatusActive,
		StartDate: hr.Date{Time: time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1)},
	}
}

// generate builds the run's people: sc.Doomed partial-failure hires first,
// then sc.Hires, of whom sc.Moves move and sc.Leavers leave (every fifth
// person from the first and second on, so both are spread over the hires).
// The employee IDs are a block no other run is likely to use.
func generate(sc Scenario, rng *rand.Rand) ([]*subject, error) {
	n := sc.Doomed + sc.Hires
	if n > 800000 {
		return nil, fmt.Errorf("%d people do not fit in the employee ID space", n)
	}
	base := 100000 + rng.IntN(899999-n)
	roles := assignRoles(sc.Hires, sc.Moves, sc.Leavers)
	var out []*subject
	for i := range n {
		id := fmt.Sprintf("E%06d", base+i)
		if i < sc.Doomed {
			out = append(out, &subject{person: newPerson(id, i, doomedProfile), role: roleDoomed})
			continue
		}
		k := i - sc.Doomed
		s := &subject{person: newPerson(id, i, profiles[k%len(profiles)]), role: roles[k]}
		if s.role == roleMover {
			moved := s.person
			to := profiles[(k%len(profiles)+1+rng.IntN(len(profiles)-1))%len(profiles)]
			moved.Department, moved.Title, moved.Location = to.department, to.title, to.location
			s.moved = &moved
		}
		out = append(out, s)
	}
	return out, nil
}

// assignRoles gives moves to indexes 0, 5, 10, ... and leaves to 1, 6,
// 11, ..., then, when there are more than a fifth, to the first free ones.
func assignRoles(n, moves, leavers int) []role {
	roles := make([]role, n)
	assign := func(r role, want, offset int) {
		for i := offset; i < n && want > 0; i += 5 {
			if roles[i] == roleHire {
				roles[i] = r
				want--
			}
		}
		for i := 0; i < n && want > 0; i++ {
			if roles[i] == roleHire {
				roles[i] = r
				want--
			}
		}
	}
	assign(roleMover, moves, 0)
	assign(roleLeaver, leavers, 1)
	return roles
}

// expected is what a subject should hold in the end, from policy and the
// events sent: a hire what their plan gives; a mover what the new plan
// gives, plus an account without entitlements where only the old job
// gave one (a move revokes access but deletes no account); a leaver a
// disabled account without entitlements wherever they had one (deletion
// waits for the retention period); a doomed hire nothing at all.
func expected(p *policy.Policy, s *subject, username string) (verify.Person, error) {
	want := verify.Person{EmployeeID: s.person.EmployeeID, Username: username, Accounts: map[string]verify.Account{}}
	if s.role == roleDoomed {
		return want, nil
	}
	hired, err := birthright(p, s.person)
	if err != nil {
		return want, err
	}
	switch s.role {
	case roleHire:
		want.Accounts = hired
	case roleLeaver:
		for app := range hired {
			want.Accounts[app] = verify.Account{Disabled: true}
		}
	case roleMover:
		moved, err := birthright(p, *s.moved)
		if err != nil {
			return want, err
		}
		for app := range hired {
			want.Accounts[app] = verify.Account{}
		}
		for app, a := range moved {
			want.Accounts[app] = a
		}
	}
	return want, nil
}

// birthright plans a person's access and refuses a plan that needs an
// approver: the fault tests must finish without anyone answering.
func birthright(p *policy.Policy, person hr.Person) (map[string]verify.Account, error) {
	plan, err := p.Plan(person)
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", person.EmployeeID, err)
	}
	accounts, gated := verify.Birthright(plan)
	if len(gated) > 0 {
		return nil, fmt.Errorf("the job %s/%s needs approval for %s/%s: pick jobs that need none", person.Department, person.Title,
			gated[0].Application, gated[0].Entitlement)
	}
	return accounts, nil
}

// moverID is the workflow ID of a mover's role change.
func (s *subject) moverID() string {
	return workflows.MoverID(s.person.EmployeeID, workflows.MoverChangeKey(*s.moved))
}
