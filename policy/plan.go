package policy

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"

	"github.com/provisio-dev/provisio/internal/hr"
)

// Plan is what a person should hold according to one policy version. It is
// JSON-serialisable with stable field names: workflows record it in their
// history through an activity.
type Plan struct {
	EmployeeID string `json:"employeeId"`
	// PolicyVersion is the Version of the policy that made the plan.
	PolicyVersion string `json:"policyVersion"`
	// Items are sorted by application, then entitlement.
	Items []Item `json:"items"`
	// Conflicts are separation-of-duties sets the items themselves break.
	Conflicts []Conflict `json:"conflicts,omitempty"`
	// Leaver is set when the person must leave on a known date.
	Leaver *Leaver `json:"leaver,omitempty"`
	// Warnings are rules that could not be evaluated for this person (and
	// so did not match), e.g. one reading a missing HR attribute.
	Warnings []string `json:"warnings,omitempty"`
}

// Leaver is a leave the HR record already implies.
type Leaver struct {
	// Date is the last day; zero when the person has already left.
	Date   hr.Date `json:"date,omitzero"`
	Reason string  `json:"reason"`
}

// Item is one entitlement a person should hold, why, and what granting it
// needs.
type Item struct {
	Application string `json:"application"`
	Entitlement string `json:"entitlement"`
	Risk        Risk   `json:"risk"`
	// Reasons are every rule (and role) that grants the item: the "why"
	// auditors ask for. Sorted.
	Reasons []Reason `json:"reasons"`
	// Approvals are the steps to pass, in order; empty means none.
	Approvals []ApprovalStep `json:"approvals,omitempty"`
	// Temporary means the grant ends after MaxDuration; RemindBefore and
	// ExtensionNeedsApproval then say how to handle its end.
	Temporary              bool          `json:"temporary,omitempty"`
	MaxDuration            time.Duration `json:"maxDuration,omitempty"`
	RemindBefore           time.Duration `json:"remindBefore,omitempty"`
	ExtensionNeedsApproval bool          `json:"extensionNeedsApproval,omitempty"`
}

// Ref returns the item's entitlement reference.
func (it Item) Ref() Ref { return Ref{Application: it.Application, Entitlement: it.Entitlement} }

// ReasonKind says how an item came to be planned.
type ReasonKind string

// Reason kinds.
const (
	// ReasonRule: a rule grants the entitlement directly.
	ReasonRule ReasonKind = "rule"
	// ReasonRole: a rule grants a role that contains the entitlement.
	ReasonRole ReasonKind = "role"
	// ReasonRequest: someone asked for it (Policy.Request).
	ReasonRequest ReasonKind = "request"
)

// Reason is one cause of an item.
type Reason struct {
	Kind ReasonKind `json:"kind"`
	// Rule is the matching rule (empty for requests).
	Rule string `json:"rule,omitempty"`
	// Role is the role the rule grants (for Kind role).
	Role string `json:"role,omitempty"`
	// Via are the included roles from Role down to the one that lists the
	// entitlement, when it is not Role itself.
	Via []string `json:"via,omitempty"`
}

// String reads like "rule sales -> role seller -> role staff".
func (r Reason) String() string {
	switch r.Kind {
	case ReasonRequest:
		return "request"
	case ReasonRole:
		parts := []string{"rule " + r.Rule, "role " + r.Role}
		for _, v := range r.Via {
			parts = append(parts, "role "+v)
		}
		return strings.Join(parts, " -> ")
	}
	return "rule " + r.Rule
}

func compareReasons(a, b Reason) int {
	return cmp.Or(
		strings.Compare(string(a.Kind), string(b.Kind)),
		strings.Compare(a.Rule, b.Rule),
		strings.Compare(a.Role, b.Role),
		slices.Compare(a.Via, b.Via),
	)
}

// ApproverKind says whose approval a step needs.
type ApproverKind string

// Approver kinds.
const (
	ApproverManager ApproverKind = "manager"
	ApproverOwner   ApproverKind = "owner"
	// ApproverNamed is a person the policy names (separation of duties).
	ApproverNamed ApproverKind = "named"
)

// ApprovalStep is one approval, resolved to the person who gives it.
type ApprovalStep struct {
	Kind ApproverKind `json:"kind"`
	// ApproverID is the employee ID asked; empty only when Unresolved.
	ApproverID string `json:"approverId,omitempty"`
	// EscalateAfter is when the approver's manager is asked as well.
	EscalateAfter time.Duration `json:"escalateAfter"`
	// ExpireAfter is when the step counts as rejected.
	ExpireAfter time.Duration `json:"expireAfter"`
	// Fallback explains why ApproverID is not the usual approver (e.g. no
	// manager in HR) or why one step covers two.
	Fallback string `json:"fallback,omitempty"`
	// Unresolved means nobody but the person could approve: the workflow
	// must reject the request.
	Unresolved bool `json:"unresolved,omitempty"`
}

// Conflict is a separation-of-duties set a person would break.
type Conflict struct {
	// SoD is the name of the set.
	SoD         string    `json:"sod"`
	Description string    `json:"description,omitempty"`
	Action      SoDAction `json:"action"`
	// Entitlements are the members of the set the person would hold
	// together, sorted.
	Entitlements []Ref `json:"entitlements"`
	// Held are those of them the person holds already.
	Held []Ref `json:"held,omitempty"`
	// Approval is the step that allows a require_approval combination.
	Approval *ApprovalStep `json:"approval,omitempty"`
}

// Preexisting reports whether the person already holds the whole
// combination, so no change of theirs causes it.
func (c Conflict) Preexisting() bool { return len(c.Held) == len(c.Entitlements) }

// Held is an entitlement an account holds, as a connector reports it, with
// whether it was granted time-boxed.
type Held struct {
	Application string `json:"application"`
	Entitlement string `json:"entitlement"`
	// Temporary grants end by their own timer; Diff never revokes them.
	Temporary bool `json:"temporary,omitempty"`
}

// Ref returns the held entitlement's reference.
func (h Held) Ref() Ref { return Ref{Application: h.Application, Entitlement: h.Entitlement} }

// Changes is what moves a person from what they hold to a plan.
type Changes struct {
	// Grant are planned items not held yet.
	Grant []Item `json:"grant"`
	// Keep are planned items already held (also when held temporarily).
	Keep []Item `json:"keep"`
	// Revoke are held permanent grants of policy-managed entitlements the
	// plan no longer gives.
	Revoke []Held `json:"revoke"`
	// Expiring are held temporary grants the plan does not give; they end
	// by their own expiry, not by a revoke.
	Expiring []Held `json:"expiring,omitempty"`
	// Unmanaged are held entitlements the policy does not declare (granted
	// by hand in the target system); the policy never touches them.
	Unmanaged []Held `json:"unmanaged,omitempty"`
}

// Plan decides the birthright access of person: every rule whose condition
// matches grants its roles and entitlements. Each item needs its
// entitlement's own approval plus the role approvals of the least demanding
// way the person qualifies for it: an approval-gated role adds nothing for an
// entitlement the person gets anyway. A person whose status is
// terminated gets an empty plan with a Leaver. A contractor with an end date
// gets a Leaver on that date.
func (p *Policy) Plan(person hr.Person) (Plan, error) {
	if err := person.Validate(); err != nil {
		return Plan{}, fmt.Errorf("invalid HR record: %w", err)
	}
	plan := Plan{EmployeeID: person.EmployeeID, PolicyVersion: p.Version, Items: []Item{}}
	if person.Status == hr.StatusTerm {
		plan.Leaver = &Leaver{Date: person.EndDate, Reason: "status is terminated: the person keeps no access"}
		return plan, nil
	}
	if person.EmploymentType == hr.TypeContractor && !person.EndDate.IsZero() {
		plan.Leaver = &Leaver{Date: person.EndDate, Reason: "contractor end date: automatic leaver on that date"}
	}

	acc := map[Ref][]path{}
	add := func(r Ref, why Reason, via []Approval) {
		acc[r] = append(acc[r], path{why, via})
	}
	act := map[string]any{"person": toCELPerson(person)}
	for _, r := range p.Rules {
		out, _, err := r.prg.Eval(act)
		if err != nil {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("rule %s (line %d) was skipped: it cannot be evaluated for this person: %v", r.Name, r.Line, err))
			continue
		}
		if out != types.True {
			continue
		}
		for _, e := range r.Entitlements {
			add(e, Reason{Kind: ReasonRule, Rule: r.Name}, nil)
		}
		for _, role := range r.Roles {
			p.expand(p.roles[role], r.Name, role, nil, nil, add)
		}
	}

	refs := make([]Ref, 0, len(acc))
	for r := range acc {
		refs = append(refs, r)
	}
	slices.SortFunc(refs, compareRefs)
	for _, r := range refs {
		paths := acc[r]
		slices.SortStableFunc(paths, func(x, y path) int { return compareReasons(x.why, y.why) })
		paths = slices.CompactFunc(paths, func(x, y path) bool { return compareReasons(x.why, y.why) == 0 })
		reasons := make([]Reason, len(paths))
		for i, pt := range paths {
			reasons[i] = pt.why
		}
		e := p.Entitlement(r)
		it := Item{
			Application: r.Application, Entitlement: r.Entitlement, Risk: e.Risk,
			Reasons:   reasons,
			Approvals: p.steps(person, e, append([]Approval{e.Approval}, easiest(paths)...)),
		}
		if e.Temporary.Only {
			it.Temporary = true
			it.MaxDuration = e.Temporary.MaxDuration
			it.RemindBefore = e.Temporary.RemindBefore
			it.ExtensionNeedsApproval = e.Temporary.ExtensionNeedsApproval
		}
		plan.Items = append(plan.Items, it)
	}
	plan.Conflicts = p.CheckSoD(plan, nil)
	return plan, nil
}

// path is one way an entitlement is planned: the reason and the approvals
// of the roles along the way.
type path struct {
	why       Reason
	approvals []Approval
}

// easiest returns the role approvals of the least demanding path (fewest
// approver kinds; the first in reason order on a tie). A person who
// qualifies for an entitlement without any approval, e.g. through a plain
// role, does not need one because an approval-gated role also contains it.
func easiest(paths []path) []Approval {
	best, bestN := -1, 0
	for i, pt := range paths {
		var kinds [2]bool
		for _, a := range pt.approvals {
			for _, k := range a.Require.kinds() {
				kinds[boolIndex(k == ApproverOwner)] = true
			}
		}
		n := boolIndex(kinds[0]) + boolIndex(kinds[1])
		if best < 0 || n < bestN {
			best, bestN = i, n
		}
	}
	if best < 0 {
		return nil
	}
	return paths[best].approvals
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// expand grants the entitlements of role and of every role it includes.
// The loader refuses cycles and bounds the number of include paths, so this
// terminates quickly.
func (p *Policy) expand(role *Role, rule, top string, via []string, approvals []Approval, add func(Ref, Reason, []Approval)) {
	if role.Approval.Require != RequireNone {
		approvals = append(slices.Clip(approvals), role.Approval)
	}
	for _, e := range role.Entitlements {
		add(e, Reason{Kind: ReasonRole, Rule: rule, Role: top, Via: slices.Clone(via)}, approvals)
	}
	for _, inc := range role.Includes {
		p.expand(p.roles[inc], rule, top, append(slices.Clip(via), inc), approvals, add)
	}
}

// steps turns the approvals an item needs (its own and those of the roles
// on its easiest path) into ordered, resolved steps: every manager step, then
// every owner step, each waiting the shortest time any source asks for.
func (p *Policy) steps(person hr.Person, e *Entitlement, sources []Approval) []ApprovalStep {
	type waits struct {
		need          bool
		escalate, exp time.Duration
	}
	var w [2]waits // manager, owner
	for _, a := range sources {
		for _, k := range a.Require.kinds() {
			i := boolIndex(k == ApproverOwner)
			if !w[i].need {
				w[i] = waits{true, a.EscalateAfter, a.ExpireAfter}
				continue
			}
			w[i].escalate = min(w[i].escalate, a.EscalateAfter)
			w[i].exp = min(w[i].exp, a.ExpireAfter)
		}
	}
	app := p.apps[e.Application]
	var out []ApprovalStep
	for i, k := range []ApproverKind{ApproverManager, ApproverOwner} {
		if !w[i].need {
			continue
		}
		s := ApprovalStep{Kind: k, EscalateAfter: w[i].escalate, ExpireAfter: w[i].exp}
		if k == ApproverManager {
			s.ApproverID = person.ManagerID
			if s.ApproverID == "" {
				s.ApproverID = app.Owner
				s.Fallback = "no manager in the HR record: the application owner approves instead"
			}
		} else {
			s.ApproverID = app.Owner
		}
		out = append(out, p.guardSelf(person.EmployeeID, s))
	}
	// The same person asked twice in a row (a manager who is also the
	// owner, or the owner standing in for a missing manager) approves once.
	if len(out) == 2 && !out[0].Unresolved && out[0].ApproverID == out[1].ApproverID {
		out[0].Fallback = joinNote(out[0].Fallback, "the same person is the application owner: one approval covers both steps")
		out[0].EscalateAfter = min(out[0].EscalateAfter, out[1].EscalateAfter)
		out[0].ExpireAfter = min(out[0].ExpireAfter, out[1].ExpireAfter)
		out = out[:1]
	}
	return out
}

// guardSelf makes sure nobody approves their own access.
func (p *Policy) guardSelf(employeeID string, s ApprovalStep) ApprovalStep {
	if s.ApproverID != "" && s.ApproverID != employeeID {
		return s
	}
	why := "the approver would be the person themselves"
	if s.ApproverID == "" {
		why = "no approver is known"
	}
	if p.FallbackApprover != "" && p.FallbackApprover != employeeID {
		s.ApproverID = p.FallbackApprover
		s.Fallback = joinNote(s.Fallback, why+": the policy's fallback_approver approves instead")
		return s
	}
	s.ApproverID = ""
	s.Unresolved = true
	s.Fallback = joinNote(s.Fallback, why+" and no fallback_approver can stand in: reject the request")
	return s
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// CheckSoD returns the separation-of-duties sets that the planned items
// together with what the person already holds would break: any two members
// of a set held at once is a conflict. Conflicts are in policy order.
func (p *Policy) CheckSoD(desired Plan, held []Held) []Conflict {
	have := map[Ref]bool{}
	isHeld := map[Ref]bool{}
	for _, it := range desired.Items {
		have[it.Ref()] = true
	}
	for _, h := range held {
		have[h.Ref()] = true
		isHeld[h.Ref()] = true
	}
	var out []Conflict
	for _, s := range p.SoD {
		var together, already []Ref
		for _, r := range s.Entitlements {
			if have[r] {
				together = append(together, r)
				if isHeld[r] {
					already = append(already, r)
				}
			}
		}
		if len(together) < 2 {
			continue
		}
		c := Conflict{SoD: s.Name, Description: s.Description, Action: s.Action, Entitlements: together, Held: already}
		if s.Action == SoDRequireApproval {
			step := p.guardSelf(desired.EmployeeID, ApprovalStep{
				Kind: ApproverNamed, ApproverID: s.Approver,
				EscalateAfter: s.Approval.EscalateAfter, ExpireAfter: s.Approval.ExpireAfter,
			})
			c.Approval = &step
		}
		out = append(out, c)
	}
	return out
}

// Diff compares what a person holds with a plan (a mover's old and new
// access). Held entitlements the policy does not declare are reported as
// Unmanaged and never revoked: the policy only manages what it names.
// Held temporary grants the plan does not give are left to expire.
func (p *Policy) Diff(held []Held, desired Plan) Changes {
	ch := Changes{Grant: []Item{}, Keep: []Item{}, Revoke: []Held{}}
	want := map[Ref]bool{}
	for _, it := range desired.Items {
		want[it.Ref()] = true
	}
	hs := slices.Clone(held)
	slices.SortFunc(hs, func(a, b Held) int {
		// Permanent before temporary, so a ref held both ways counts as
		// permanent below.
		return cmp.Or(compareRefs(a.Ref(), b.Ref()), boolCmp(a.Temporary, b.Temporary))
	})
	have := map[Ref]bool{}
	for _, h := range hs {
		r := h.Ref()
		if have[r] {
			continue
		}
		have[r] = true
		switch {
		case p.Entitlement(r) == nil:
			ch.Unmanaged = append(ch.Unmanaged, h)
		case want[r]:
		case h.Temporary:
			ch.Expiring = append(ch.Expiring, h)
		default:
			ch.Revoke = append(ch.Revoke, h)
		}
	}
	for _, it := range desired.Items {
		if have[it.Ref()] {
			ch.Keep = append(ch.Keep, it)
		} else {
			ch.Grant = append(ch.Grant, it)
		}
	}
	return ch
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// Request is an ad-hoc request of one entitlement by person, for duration
// (0 for a permanent grant). It returns the item with the approvals the
// entitlement itself asks for, or an error when the policy does not allow
// the request as made.
func (p *Policy) Request(person hr.Person, r Ref, duration time.Duration) (Item, error) {
	if err := person.Validate(); err != nil {
		return Item{}, fmt.Errorf("invalid HR record: %w", err)
	}
	if person.Status != hr.StatusActive {
		return Item{}, fmt.Errorf("request %s: the person is not active", r)
	}
	e := p.Entitlement(r)
	if e == nil {
		return Item{}, fmt.Errorf("request %s: the policy declares no such entitlement", r)
	}
	switch {
	case duration < 0:
		return Item{}, fmt.Errorf("request %s: negative duration", r)
	case duration == 0 && e.Temporary.Only:
		return Item{}, fmt.Errorf("request %s: only granted temporarily; ask for at most %s", r, FormatDuration(e.Temporary.MaxDuration))
	case duration > e.Temporary.MaxDuration:
		return Item{}, fmt.Errorf("request %s: %s is longer than the %s the policy allows", r, FormatDuration(duration), FormatDuration(e.Temporary.MaxDuration))
	}
	it := Item{
		Application: r.Application, Entitlement: r.Entitlement, Risk: e.Risk,
		Reasons:   []Reason{{Kind: ReasonRequest}},
		Approvals: p.steps(person, e, []Approval{e.Approval}),
	}
	if duration > 0 {
		it.Temporary = true
		it.MaxDuration = duration
		it.RemindBefore = min(e.Temporary.RemindBefore, duration/2)
		it.ExtensionNeedsApproval = e.Temporary.ExtensionNeedsApproval
	}
	return it, nil
}

// jsonDuration writes a duration in JSON the way the policy file does
// ("3d", "90m"), so recorded plans are readable; it also reads plain
// nanosecond numbers.
type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(FormatDuration(time.Duration(d)))
}

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var n int64
	if err := json.Unmarshal(b, &n); err == nil {
		*d = jsonDuration(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"3d\": %w", err)
	}
	if s == "0s" || s == "" {
		*d = 0
		return nil
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = jsonDuration(v)
	return nil
}

// MarshalJSON writes the waits as "3d"-style strings.
func (s ApprovalStep) MarshalJSON() ([]byte, error) {
	type plain ApprovalStep
	return json.Marshal(struct {
		plain
		EscalateAfter jsonDuration `json:"escalateAfter"`
		ExpireAfter   jsonDuration `json:"expireAfter"`
	}{plain(s), jsonDuration(s.EscalateAfter), jsonDuration(s.ExpireAfter)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *ApprovalStep) UnmarshalJSON(b []byte) error {
	type plain ApprovalStep
	var v struct {
		plain
		EscalateAfter jsonDuration `json:"escalateAfter"`
		ExpireAfter   jsonDuration `json:"expireAfter"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = ApprovalStep(v.plain)
	s.EscalateAfter, s.ExpireAfter = time.Duration(v.EscalateAfter), time.Duration(v.ExpireAfter)
	return nil
}

// MarshalJSON writes the durations as "3d"-style strings.
func (it Item) MarshalJSON() ([]byte, error) {
	type plain Item
	v := struct {
		plain
		MaxDuration  *jsonDuration `json:"maxDuration,omitempty"`
		RemindBefore *jsonDuration `json:"remindBefore,omitempty"`
	}{plain: plain(it)}
	if it.MaxDuration != 0 {
		d := jsonDuration(it.MaxDuration)
		v.MaxDuration = &d
	}
	if it.RemindBefore != 0 {
		d := jsonDuration(it.RemindBefore)
		v.RemindBefore = &d
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (it *Item) UnmarshalJSON(b []byte) error {
	type plain Item
	var v struct {
		plain
		MaxDuration  jsonDuration `json:"maxDuration"`
		RemindBefore jsonDuration `json:"remindBefore"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*it = Item(v.plain)
	it.MaxDuration, it.RemindBefore = time.Duration(v.MaxDuration), time.Duration(v.RemindBefore)
	return nil
}
