package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/hr"
)

// testPolicy is small enough to reason about case by case.
//
//	E900000 fallback approver, E900001 owner of dir, E900002 owner of db.
const testPolicy = `
schema: 1
fallback_approver: E900000
applications:
  - name: dir
    connector: ldap
    owner: E900001
    entitlements:
      - {name: staff, risk: low}
      - {name: eng, risk: low}
      - {name: sales, risk: low}
      - {name: berlin, risk: low}
      - {name: cc42, risk: low}
      - {name: late, risk: low}
      - {name: mgr-approved, risk: medium, approval: manager}
      - {name: owner-approved, risk: high, approval: owner}
      - {name: both, risk: high, approval: manager_then_owner}
      - name: breakglass
        risk: critical
        approval: {require: owner, escalate_after: 2h, expire_after: 12h}
        temporary: {only: true, max_duration: 8h, remind_before: 1h, extension_needs_approval: false}
  - name: db
    connector: postgres
    owner: E900002
    leaver: {retention: 7d}
    entitlements:
      - {name: read, risk: medium}
      - {name: write, risk: high}
      - {name: pay, risk: high}
roles:
  - {name: base, entitlements: [dir/staff]}
  - {name: engineer, includes: [base], entitlements: [dir/eng, db/read]}
  - name: gated
    approval: {require: manager, escalate_after: 1d, expire_after: 2d}
    entitlements: [db/write, dir/staff]
  - {name: outer, includes: [engineer, gated]}
rules:
  - {name: everyone, when: 'person.status == "active"', roles: [base]}
  - {name: eng, when: 'person.department == "Engineering"', roles: [engineer]}
  - {name: sales, when: 'person.department == "Sales" && person.location != "Remote"', entitlements: [dir/sales]}
  - {name: berlin, when: 'person.location == "Berlin"', entitlements: [dir/berlin]}
  - {name: cc, when: '"cost_center" in person.attributes && person.attributes["cost_center"] == "42"', entitlements: [dir/cc42]}
  - {name: contractors, when: 'person.employment_type == "contractor"', roles: [gated]}
  - {name: team-boss, when: 'person.manager_id == "E900003"', entitlements: [dir/mgr-approved]}
  - {name: late-start, when: 'person.start_date >= "2027-01-01"', entitlements: [dir/late]}
  - {name: title-words, when: 'person.title.contains("Director") && person.title.lowerAscii().startsWith("hr")', roles: [outer]}
separation_of_duties:
  - {name: write-pay, entitlements: [db/write, db/pay], action: block}
  - {name: read-write, description: no self-review, entitlements: [db/read, db/write], action: require_approval, approver: E900004}
`

func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Parse("test.yaml", []byte(src))
	require.NoError(t, err)
	return p
}

// person is a valid active employee; edit changes it for one case.
func person(edit func(*hr.Person)) hr.Person {
	p := hr.Person{
		EmployeeID: "E123456", GivenName: "Ada", FamilyName: "Lovelace", Email: "ada@example.com",
		Department: "Support", Title: "Support Agent", ManagerID: "E654321", Location: "London",
		EmploymentType: hr.TypeEmployee, StartDate: hr.Date{Time: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		Status: hr.StatusActive,
	}
	if edit != nil {
		edit(&p)
	}
	return p
}

func refsOf(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Ref().String())
	}
	return out
}

func item(t *testing.T, pl Plan, ref string) Item {
	t.Helper()
	for _, it := range pl.Items {
		if it.Ref().String() == ref {
			return it
		}
	}
	t.Fatalf("plan has no %s: %v", ref, refsOf(pl.Items))
	return Item{}
}

func TestPlanRuleMatching(t *testing.T) {
	p := mustParse(t, testPolicy)
	tests := []struct {
		name   string
		edit   func(*hr.Person)
		want   []string
		reason map[string][]string // ref -> Reason.String() of each reason
	}{
		{
			name: "everyone gets the base role", want: []string{"dir/staff"},
			reason: map[string][]string{"dir/staff": {"rule everyone -> role base"}},
		},
		{
			name: "department through a nested role",
			edit: func(p *hr.Person) { p.Department = "Engineering" },
			want: []string{"db/read", "dir/eng", "dir/staff"},
			reason: map[string][]string{
				"dir/staff": {"rule eng -> role engineer -> role base", "rule everyone -> role base"},
				"dir/eng":   {"rule eng -> role engineer"},
			},
		},
		{
			name:   "and with not-equal: Sales outside Remote",
			edit:   func(p *hr.Person) { p.Department = "Sales"; p.Location = "New York" },
			want:   []string{"dir/sales", "dir/staff"},
			reason: map[string][]string{"dir/sales": {"rule sales"}},
		},
		{
			name: "and with not-equal: Sales in Remote does not match",
			edit: func(p *hr.Person) { p.Department = "Sales"; p.Location = "Remote" },
			want: []string{"dir/staff"},
		},
		{
			name: "location",
			edit: func(p *hr.Person) { p.Location = "Berlin" },
			want: []string{"dir/berlin", "dir/staff"},
		},
		{
			name: "extra HR attribute",
			edit: func(p *hr.Person) { p.Attributes = map[string]string{"cost_center": "42"} },
			want: []string{"dir/cc42", "dir/staff"},
		},
		{
			name: "extra HR attribute with another value",
			edit: func(p *hr.Person) { p.Attributes = map[string]string{"cost_center": "7"} },
			want: []string{"dir/staff"},
		},
		{
			name:   "employment type",
			edit:   func(p *hr.Person) { p.EmploymentType = hr.TypeContractor },
			want:   []string{"db/write", "dir/staff"},
			reason: map[string][]string{"dir/staff": {"rule contractors -> role gated", "rule everyone -> role base"}},
		},
		{
			name: "manager",
			edit: func(p *hr.Person) { p.ManagerID = "E900003" },
			want: []string{"dir/mgr-approved", "dir/staff"},
		},
		{
			name: "start date compared as text",
			edit: func(p *hr.Person) { p.StartDate = hr.Date{Time: time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)} },
			want: []string{"dir/late", "dir/staff"},
		},
		{
			name: "string functions on the title; diamond of roles",
			edit: func(p *hr.Person) { p.Department = "HR"; p.Title = "HR Director" },
			want: []string{"db/read", "db/write", "dir/eng", "dir/staff"},
			reason: map[string][]string{"dir/staff": {
				"rule everyone -> role base",
				"rule title-words -> role outer -> role engineer -> role base",
				"rule title-words -> role outer -> role gated",
			}},
		},
		{
			name: "terminated people get nothing",
			edit: func(p *hr.Person) {
				p.Department = "Engineering"
				p.Status = hr.StatusTerm
			},
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl, err := p.Plan(person(tc.edit))
			require.NoError(t, err)
			assert.Equal(t, tc.want, refsOf(pl.Items))
			assert.Equal(t, p.Version, pl.PolicyVersion)
			assert.Equal(t, "E123456", pl.EmployeeID)
			for ref, want := range tc.reason {
				var got []string
				for _, r := range item(t, pl, ref).Reasons {
					got = append(got, r.String())
				}
				assert.Equal(t, want, got, "reasons of %s", ref)
			}
			assert.Empty(t, pl.Warnings)
		})
	}
}

func TestPlanMissingAttributeWarns(t *testing.T) {
	guarded := `"cost_center" in person.attributes && person.attributes["cost_center"] == "42"`
	p := mustParse(t, strings.Replace(testPolicy, guarded, `person.attributes["cost_center"] == "42"`, 1))
	pl, err := p.Plan(person(nil)) // no cost_center attribute at all
	require.NoError(t, err)
	assert.Equal(t, []string{"dir/staff"}, refsOf(pl.Items), "the rule does not match")
	require.Len(t, pl.Warnings, 1)
	assert.Contains(t, pl.Warnings[0], "rule cc")
	assert.Contains(t, pl.Warnings[0], "no such key: cost_center")

	// The optional form never warns.
	p2 := mustParse(t, strings.Replace(testPolicy, guarded, `person.attributes[?"cost_center"].orValue("") == "42"`, 1))
	pl, err = p2.Plan(person(nil))
	require.NoError(t, err)
	assert.Empty(t, pl.Warnings)
}

func TestPlanLeavers(t *testing.T) {
	p := mustParse(t, testPolicy)
	end := hr.Date{Time: time.Date(2026, 9, 30, 0, 0, 0, 0, time.UTC)}
	tests := []struct {
		name       string
		edit       func(*hr.Person)
		wantLeaver *Leaver
	}{
		{"employee without end date", nil, nil},
		{"contractor with end date", func(p *hr.Person) { p.EmploymentType = hr.TypeContractor; p.EndDate = end },
			&Leaver{Date: end, Reason: "contractor end date: automatic leaver on that date"}},
		{"contractor without end date", func(p *hr.Person) { p.EmploymentType = hr.TypeContractor }, nil},
		{"employee with end date is not automatic", func(p *hr.Person) { p.EndDate = end }, nil},
		{"terminated", func(p *hr.Person) { p.Status = hr.StatusTerm; p.EndDate = end },
			&Leaver{Date: end, Reason: "status is terminated: the person keeps no access"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl, err := p.Plan(person(tc.edit))
			require.NoError(t, err)
			assert.Equal(t, tc.wantLeaver, pl.Leaver)
		})
	}
	assert.Equal(t, 7*Day, p.Retention("db"))
	assert.Equal(t, DefaultRetention, p.Retention("dir"))
}

func TestPlanRejectsInvalidPerson(t *testing.T) {
	p := mustParse(t, testPolicy)
	_, err := p.Plan(person(func(p *hr.Person) { p.EmployeeID = "nope" }))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "employee_id")
}

func TestApprovals(t *testing.T) {
	p := mustParse(t, testPolicy)
	const (
		self     = "E123456"
		manager  = "E654321"
		dirOwner = "E900001"
		fallback = "E900000"
	)
	std := func(k ApproverKind, id string) ApprovalStep {
		return ApprovalStep{Kind: k, ApproverID: id, EscalateAfter: 3 * Day, ExpireAfter: 7 * Day}
	}
	tests := []struct {
		name string
		ref  string
		edit func(*hr.Person)
		want []ApprovalStep
	}{
		{name: "none", ref: "dir/staff", want: nil},
		{name: "manager", ref: "dir/mgr-approved", want: []ApprovalStep{std(ApproverManager, manager)}},
		{name: "owner", ref: "dir/owner-approved", want: []ApprovalStep{std(ApproverOwner, dirOwner)}},
		{name: "manager then owner", ref: "dir/both", want: []ApprovalStep{std(ApproverManager, manager), std(ApproverOwner, dirOwner)}},
		{
			name: "own waits", ref: "dir/breakglass",
			want: []ApprovalStep{{Kind: ApproverOwner, ApproverID: dirOwner, EscalateAfter: 2 * time.Hour, ExpireAfter: 12 * time.Hour}},
		},
		{
			name: "no manager: the owner stands in", ref: "dir/mgr-approved",
			edit: func(p *hr.Person) { p.ManagerID = "" },
			want: []ApprovalStep{{Kind: ApproverManager, ApproverID: dirOwner, EscalateAfter: 3 * Day, ExpireAfter: 7 * Day,
				Fallback: "no manager in the HR record: the application owner approves instead"}},
		},
		{
			name: "no manager and the owner also approves: one step", ref: "dir/both",
			edit: func(p *hr.Person) { p.ManagerID = "" },
			want: []ApprovalStep{{Kind: ApproverManager, ApproverID: dirOwner, EscalateAfter: 3 * Day, ExpireAfter: 7 * Day,
				Fallback: "no manager in the HR record: the application owner approves instead; the same person is the application owner: one approval covers both steps"}},
		},
		{
			name: "the manager owns the application: one step", ref: "dir/both",
			edit: func(p *hr.Person) { p.ManagerID = dirOwner },
			want: []ApprovalStep{{Kind: ApproverManager, ApproverID: dirOwner, EscalateAfter: 3 * Day, ExpireAfter: 7 * Day,
				Fallback: "the same person is the application owner: one approval covers both steps"}},
		},
		{
			name: "owners never approve themselves", ref: "dir/owner-approved",
			edit: func(p *hr.Person) { p.EmployeeID = dirOwner },
			want: []ApprovalStep{{Kind: ApproverOwner, ApproverID: fallback, EscalateAfter: 3 * Day, ExpireAfter: 7 * Day,
				Fallback: "the approver would be the person themselves: the policy's fallback_approver approves instead"}},
		},
		{
			name: "the fallback approver's own requests go to the owner as usual", ref: "dir/owner-approved",
			edit: func(p *hr.Person) { p.EmployeeID = fallback },
			want: []ApprovalStep{std(ApproverOwner, dirOwner)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			it, err := p.Request(person(tc.edit), mustRef(t, tc.ref), durationFor(p, tc.ref))
			require.NoError(t, err)
			assert.Equal(t, tc.want, it.Approvals)
			assert.Equal(t, []Reason{{Kind: ReasonRequest}}, it.Reasons)
		})
	}

	t.Run("unresolved when only the person could approve", func(t *testing.T) {
		src := strings.Replace(testPolicy, "fallback_approver: E900000", "fallback_approver: E900001", 1)
		p := mustParse(t, src)
		it, err := p.Request(person(func(p *hr.Person) { p.EmployeeID = dirOwner }), mustRef(t, "dir/owner-approved"), 0)
		require.NoError(t, err)
		require.Len(t, it.Approvals, 1)
		assert.True(t, it.Approvals[0].Unresolved)
		assert.Empty(t, it.Approvals[0].ApproverID)
		assert.Contains(t, it.Approvals[0].Fallback, "reject the request")
	})

	t.Run("role approvals apply unless an easier path exists", func(t *testing.T) {
		pl, err := p.Plan(person(func(p *hr.Person) { p.EmploymentType = hr.TypeContractor }))
		require.NoError(t, err)
		gatedStep := ApprovalStep{Kind: ApproverManager, ApproverID: manager, EscalateAfter: Day, ExpireAfter: 2 * Day}
		assert.Equal(t, []ApprovalStep{gatedStep}, item(t, pl, "db/write").Approvals, "only path is through the gated role")
		assert.Empty(t, item(t, pl, "dir/staff").Approvals, "the base role grants dir/staff without approval")
	})

	t.Run("a role's approval adds to the entitlement's own", func(t *testing.T) {
		src := strings.Replace(testPolicy, "entitlements: [db/write, dir/staff]", "entitlements: [db/write, dir/staff, dir/owner-approved]", 1)
		p := mustParse(t, src)
		pl, err := p.Plan(person(func(p *hr.Person) { p.EmploymentType = hr.TypeContractor }))
		require.NoError(t, err)
		assert.Equal(t, []ApprovalStep{
			{Kind: ApproverManager, ApproverID: manager, EscalateAfter: Day, ExpireAfter: 2 * Day},
			std(ApproverOwner, dirOwner),
		}, item(t, pl, "dir/owner-approved").Approvals)
	})
}

func mustRef(t *testing.T, s string) Ref {
	t.Helper()
	r, err := ParseRef(s)
	require.NoError(t, err)
	return r
}

// durationFor asks temporary-only entitlements for their maximum.
func durationFor(p *Policy, ref string) time.Duration {
	r, _ := ParseRef(ref)
	if e := p.Entitlement(r); e != nil && e.Temporary.Only {
		return e.Temporary.MaxDuration
	}
	return 0
}

func TestRequestTemporary(t *testing.T) {
	p := mustParse(t, testPolicy)
	who := person(nil)
	tests := []struct {
		name     string
		ref      string
		duration time.Duration
		wantErr  string
		want     Item
	}{
		{name: "temporary-only needs a duration", ref: "dir/breakglass", wantErr: "only granted temporarily; ask for at most 8h"},
		{name: "longer than allowed", ref: "dir/breakglass", duration: 9 * time.Hour, wantErr: "9h is longer than the 8h the policy allows"},
		{name: "default maximum applies to others", ref: "dir/staff", duration: 91 * Day, wantErr: "91d is longer than the 90d"},
		{name: "negative", ref: "dir/staff", duration: -time.Hour, wantErr: "negative"},
		{name: "unknown", ref: "dir/nope", wantErr: "no such entitlement"},
		{
			name: "temporary-only within bounds", ref: "dir/breakglass", duration: 4 * time.Hour,
			want: Item{Temporary: true, MaxDuration: 4 * time.Hour, RemindBefore: time.Hour, ExtensionNeedsApproval: false},
		},
		{
			name: "short grant: reminder at half time", ref: "dir/staff", duration: 2 * Day,
			want: Item{Temporary: true, MaxDuration: 2 * Day, RemindBefore: Day, ExtensionNeedsApproval: true},
		},
		{name: "permanent", ref: "dir/staff", duration: 0, want: Item{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			it, err := p.Request(who, mustRef(t, tc.ref), tc.duration)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want.Temporary, it.Temporary)
			assert.Equal(t, tc.want.MaxDuration, it.MaxDuration)
			assert.Equal(t, tc.want.RemindBefore, it.RemindBefore)
			assert.Equal(t, tc.want.ExtensionNeedsApproval, it.ExtensionNeedsApproval)
		})
	}
	_, err := p.Request(person(func(p *hr.Person) { p.Status = hr.StatusTerm }), mustRef(t, "dir/staff"), 0)
	assert.ErrorContains(t, err, "not active")
}

func TestPlanTemporaryOnlyFromRule(t *testing.T) {
	src := strings.Replace(testPolicy, "entitlements: [dir/berlin]", "entitlements: [dir/berlin, dir/breakglass]", 1)
	p := mustParse(t, src)
	pl, err := p.Plan(person(func(p *hr.Person) { p.Location = "Berlin" }))
	require.NoError(t, err)
	it := item(t, pl, "dir/breakglass")
	assert.True(t, it.Temporary)
	assert.Equal(t, 8*time.Hour, it.MaxDuration)
	assert.Equal(t, time.Hour, it.RemindBefore)
	assert.False(t, it.ExtensionNeedsApproval)
	assert.False(t, item(t, pl, "dir/berlin").Temporary)
}

func TestSoD(t *testing.T) {
	p := mustParse(t, testPolicy)
	refs := func(ss ...string) []Ref {
		var out []Ref
		for _, s := range ss {
			out = append(out, mustRef(t, s))
		}
		return out
	}
	plan := func(ss ...string) Plan {
		pl := Plan{EmployeeID: "E123456"}
		for _, r := range refs(ss...) {
			pl.Items = append(pl.Items, Item{Application: r.Application, Entitlement: r.Entitlement})
		}
		return pl
	}
	reviewer := &ApprovalStep{Kind: ApproverNamed, ApproverID: "E900004", EscalateAfter: 3 * Day, ExpireAfter: 7 * Day}
	tests := []struct {
		name    string
		desired Plan
		held    []Held
		want    []Conflict
	}{
		{name: "nothing", desired: plan("db/read"), want: nil},
		{name: "members of different sets", desired: plan("db/pay", "db/read"), want: nil},
		{
			name: "block within the plan", desired: plan("db/write", "db/pay"),
			want: []Conflict{{SoD: "write-pay", Action: SoDBlock, Entitlements: refs("db/pay", "db/write")}},
		},
		{
			name: "plan plus what is held", desired: plan("db/pay"), held: []Held{{Application: "db", Entitlement: "write"}},
			want: []Conflict{{SoD: "write-pay", Action: SoDBlock, Entitlements: refs("db/pay", "db/write"), Held: refs("db/write")}},
		},
		{
			name: "temporary grants count", desired: plan("db/read"), held: []Held{{Application: "db", Entitlement: "write", Temporary: true}},
			want: []Conflict{{SoD: "read-write", Description: "no self-review", Action: SoDRequireApproval,
				Entitlements: refs("db/read", "db/write"), Held: refs("db/write"), Approval: reviewer}},
		},
		{
			name: "two sets at once, in policy order", desired: plan("db/read", "db/write", "db/pay"),
			want: []Conflict{
				{SoD: "write-pay", Action: SoDBlock, Entitlements: refs("db/pay", "db/write")},
				{SoD: "read-write", Description: "no self-review", Action: SoDRequireApproval, Entitlements: refs("db/read", "db/write"), Approval: reviewer},
			},
		},
		{
			name: "already held together", desired: plan(),
			held: []Held{{Application: "db", Entitlement: "pay"}, {Application: "db", Entitlement: "write"}},
			want: []Conflict{{SoD: "write-pay", Action: SoDBlock, Entitlements: refs("db/pay", "db/write"), Held: refs("db/pay", "db/write")}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := p.CheckSoD(tc.desired, tc.held)
			assert.Equal(t, tc.want, got)
		})
	}

	t.Run("preexisting", func(t *testing.T) {
		c := p.CheckSoD(plan(), []Held{{Application: "db", Entitlement: "pay"}, {Application: "db", Entitlement: "write"}})
		require.Len(t, c, 1)
		assert.True(t, c[0].Preexisting())
		c = p.CheckSoD(plan("db/pay"), []Held{{Application: "db", Entitlement: "write"}})
		assert.False(t, c[0].Preexisting())
	})

	t.Run("the approver never reviews their own combination", func(t *testing.T) {
		pl := plan("db/read", "db/write")
		pl.EmployeeID = "E900004"
		c := p.CheckSoD(pl, nil)
		require.Len(t, c, 1)
		assert.Equal(t, "E900000", c[0].Approval.ApproverID)
		assert.NotEmpty(t, c[0].Approval.Fallback)
	})

	t.Run("plans carry their own conflicts", func(t *testing.T) {
		// HR directors get db/read and db/write through the outer role.
		pl, err := p.Plan(person(func(p *hr.Person) { p.Department = "HR"; p.Title = "HR Director" }))
		require.NoError(t, err)
		require.Len(t, pl.Conflicts, 1)
		assert.Equal(t, "read-write", pl.Conflicts[0].SoD)
	})
}

func TestDiff(t *testing.T) {
	p := mustParse(t, testPolicy)
	eng, err := p.Plan(person(func(p *hr.Person) { p.Department = "Engineering" }))
	require.NoError(t, err)
	h := func(s string, temp bool) Held {
		r := mustRef(t, s)
		return Held{Application: r.Application, Entitlement: r.Entitlement, Temporary: temp}
	}
	tests := []struct {
		name                 string
		held                 []Held
		grant, keep          []string
		revoke, exp, unmanag []Held
	}{
		{name: "joiner holds nothing", grant: []string{"db/read", "dir/eng", "dir/staff"}},
		{
			name:   "mover from sales",
			held:   []Held{h("dir/staff", false), h("dir/sales", false)},
			grant:  []string{"db/read", "dir/eng"},
			keep:   []string{"dir/staff"},
			revoke: []Held{h("dir/sales", false)},
		},
		{
			name:  "temporary grants are left to expire",
			held:  []Held{h("dir/breakglass", true), h("db/read", true)},
			grant: []string{"dir/eng", "dir/staff"},
			keep:  []string{"db/read"},
			exp:   []Held{h("dir/breakglass", true)},
		},
		{
			name:    "entitlements the policy does not declare are not touched",
			held:    []Held{h("dir/hand-made", false), h("crm/admin", false), h("dir/eng", false)},
			grant:   []string{"db/read", "dir/staff"},
			keep:    []string{"dir/eng"},
			unmanag: []Held{h("crm/admin", false), h("dir/hand-made", false)},
		},
		{
			name:   "duplicates held both ways count as permanent",
			held:   []Held{h("dir/sales", true), h("dir/sales", false), h("dir/sales", false)},
			grant:  []string{"db/read", "dir/eng", "dir/staff"},
			revoke: []Held{h("dir/sales", false)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch := p.Diff(tc.held, eng)
			assert.Equal(t, tc.grant, refsOf(ch.Grant))
			assert.Equal(t, tc.keep, refsOf(ch.Keep))
			assert.Equal(t, orEmpty(tc.revoke), ch.Revoke)
			assert.Equal(t, tc.exp, ch.Expiring)
			assert.Equal(t, tc.unmanag, ch.Unmanaged)
		})
	}
}

func orEmpty(h []Held) []Held {
	if h == nil {
		return []Held{}
	}
	return h
}

// TestRosterPlans plans every person in the sample roster with the demo
// policy: no error, no warning, deterministic, and every item explained.
func TestRosterPlans(t *testing.T) {
	p, err := Load(demoPolicy)
	require.NoError(t, err)
	data, err := os.ReadFile("../deployments/demo/roster.csv")
	require.NoError(t, err)
	rows, bad, err := hr.ReadRoster(bytes.NewReader(data))
	require.NoError(t, err)
	require.Empty(t, bad)
	require.NotEmpty(t, rows)

	depts := map[string]bool{}
	for _, row := range rows {
		pl, err := p.Plan(row.Person)
		require.NoError(t, err, row.Person.EmployeeID)
		assert.Empty(t, pl.Warnings, row.Person.EmployeeID)
		assert.Empty(t, pl.Conflicts, "the demo policy itself breaks no SoD set for %s", row.Person.EmployeeID)
		require.NotEmpty(t, pl.Items, "%s gets nothing", row.Person.EmployeeID)
		assert.True(t, slices.IsSortedFunc(pl.Items, func(a, b Item) int { return compareRefs(a.Ref(), b.Ref()) }))
		for _, it := range pl.Items {
			assert.NotEmpty(t, it.Reasons, "%s %s has no reason", row.Person.EmployeeID, it.Ref())
			for _, s := range it.Approvals {
				assert.False(t, s.Unresolved, "%s %s", row.Person.EmployeeID, it.Ref())
				assert.NotEqual(t, row.Person.EmployeeID, s.ApproverID, "self-approval")
			}
		}
		assert.Contains(t, refsOf(pl.Items), "ldap/all-staff")
		if row.Person.EmploymentType == hr.TypeContractor && !row.Person.EndDate.IsZero() {
			require.NotNil(t, pl.Leaver)
			assert.Equal(t, row.Person.EndDate, pl.Leaver.Date)
		}
		again, err := p.Plan(row.Person)
		require.NoError(t, err)
		assert.Equal(t, pl, again, "plans are deterministic")
		if depts[row.Person.Department] {
			continue
		}
		depts[row.Person.Department] = true
		// Each department gets something beyond the all-staff basics.
		dept := strings.ToLower(row.Person.Department)
		assert.Contains(t, refsOf(pl.Items), "ldap/"+dept, "department %s", row.Person.Department)
	}
	assert.Len(t, depts, 6)
}

func TestPlanJSONRoundTrip(t *testing.T) {
	p := mustParse(t, strings.Replace(testPolicy, "entitlements: [dir/berlin]", "entitlements: [dir/berlin, dir/breakglass]", 1))
	pl, err := p.Plan(person(func(p *hr.Person) {
		p.Location = "Berlin"
		p.EmploymentType = hr.TypeContractor
		p.EndDate = hr.Date{Time: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}
		p.Department = "HR"
		p.Title = "HR Director"
	}))
	require.NoError(t, err)
	b, err := json.Marshal(pl)
	require.NoError(t, err)
	for _, s := range []string{`"maxDuration":"8h"`, `"remindBefore":"1h"`, `"escalateAfter":"2h"`, `"expireAfter":"12h"`,
		`"escalateAfter":"1d"`, `"policyVersion":"` + p.Version, `"date":"2026-12-31"`, `"kind":"role"`} {
		assert.Contains(t, string(b), s)
	}
	var back Plan
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, pl, back)

	// Nanosecond numbers are read too.
	var s ApprovalStep
	require.NoError(t, json.Unmarshal([]byte(`{"kind":"owner","approverId":"E1","escalateAfter":3600000000000,"expireAfter":"2d"}`), &s))
	assert.Equal(t, time.Hour, s.EscalateAfter)
	assert.Equal(t, 2*Day, s.ExpireAfter)
}
