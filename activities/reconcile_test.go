package activities_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/reconcile"
	"github.com/provisio-dev/provisio/policy"
)

// pagedConn is a connector whose only real method is ListAccounts: it pages
// through a fixed account list with the index as the token, and remembers
// the tokens it was asked for.
type pagedConn struct {
	connectors.Connector
	accounts []connectors.Account
	mu       sync.Mutex
	tokens   []string
}

func (c *pagedConn) ListAccounts(_ context.Context, req connectors.ListAccountsRequest) (connectors.ListAccountsResponse, error) {
	c.mu.Lock()
	c.tokens = append(c.tokens, req.PageToken)
	c.mu.Unlock()
	start := 0
	if req.PageToken != "" {
		var err error
		if start, err = strconv.Atoi(req.PageToken); err != nil {
			return connectors.ListAccountsResponse{}, connectors.Errorf(connectors.KindInvalid, "ldap", "ListAccounts", nil, "bad token")
		}
	}
	end := min(start+req.PageSizeOrDefault(), len(c.accounts))
	resp := connectors.ListAccountsResponse{Accounts: slices.Clone(c.accounts[start:end])}
	if end < len(c.accounts) {
		resp.NextPageToken = strconv.Itoa(end)
	}
	return resp, nil
}

// memStore is an in-memory activities.ReconcileStore.
type memStore struct {
	mu        sync.Mutex
	roster    map[string]hr.Person // active people
	usernames map[string]string    // employee ID -> username
	holdings  map[string][]ledger.Holding
	seen      map[string]bool // app/employee
	items     []reconcile.Item
	outcomes  []reconcile.Outcome
	forgotten []string
}

func (s *memStore) ActivePeople(_ context.Context, _ string, ids []string) (map[string]hr.Person, error) {
	out := map[string]hr.Person{}
	for _, id := range ids {
		if p, ok := s.roster[id]; ok {
			out[id] = p
		}
	}
	return out, nil
}

func (s *memStore) Owners(_ context.Context, names []string) (map[string]string, error) {
	out := map[string]string{}
	for id, u := range s.usernames {
		if slices.Contains(names, u) {
			out[u] = id
		}
	}
	return out, nil
}

func (s *memStore) Usernames(_ context.Context, ids []string) (map[string]string, error) {
	out := map[string]string{}
	for _, id := range ids {
		if u, ok := s.usernames[id]; ok {
			out[id] = u
		}
	}
	return out, nil
}

func (s *memStore) Holdings(_ context.Context, app string, ids []string) (map[string][]ledger.Holding, error) {
	out := map[string][]ledger.Holding{}
	for _, id := range ids {
		for _, h := range s.holdings[id] {
			if h.Application == app {
				out[id] = append(out[id], h)
			}
		}
	}
	return out, nil
}

func (s *memStore) MarkSeen(_ context.Context, _, app string, ids []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.seen[app+"/"+id] = true
	}
	return nil
}

func (s *memStore) Unseen(_ context.Context, q reconcile.UnseenQuery) ([]hr.Person, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id := range s.roster {
		if id > q.After && !s.seen[q.App+"/"+id] && (len(q.EmployeeIDs) == 0 || slices.Contains(q.EmployeeIDs, id)) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var out []hr.Person
	for _, id := range ids[:min(len(ids), q.Limit)] {
		out = append(out, s.roster[id])
	}
	return out, nil
}

func (s *memStore) ForgetSeen(_ context.Context, _, app string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgotten = append(s.forgotten, app)
	return nil
}

func itemKey(it reconcile.Item) string {
	return strings.Join([]string{it.Application, string(it.Class), it.EmployeeID, it.Account, it.Entitlement}, "/")
}

func (s *memStore) SaveItems(_ context.Context, _ string, items []reconcile.Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, it := range items {
		if slices.ContainsFunc(s.items, func(x reconcile.Item) bool { return itemKey(x) == itemKey(it) }) {
			continue
		}
		it.Seq = int64(len(s.items) + 1)
		s.items = append(s.items, it)
	}
	return nil
}

func (s *memStore) Summarize(_ context.Context, _, app string, perClass int) (reconcile.Summary, error) {
	sum := reconcile.Summary{Counts: map[reconcile.Class]int{}}
	for _, it := range s.items {
		if it.Application != app {
			continue
		}
		sum.Counts[it.Class]++
		if it.Action != "" {
			sum.Fixes++
		}
		if sum.Counts[it.Class] <= perClass {
			sum.Samples = append(sum.Samples, it)
		}
	}
	return sum, nil
}

func (s *memStore) Items(_ context.Context, _ string, q reconcile.ItemQuery) ([]reconcile.Item, error) {
	var out []reconcile.Item
	for _, it := range s.items {
		if it.Seq > q.AfterSeq && (!q.Pending || it.Action != "" && it.Status == reconcile.StatusFound) &&
			(len(q.Apps) == 0 || slices.Contains(q.Apps, it.Application)) && (q.Limit == 0 || len(out) < q.Limit) {
			out = append(out, it)
		}
	}
	return out, nil
}

func (s *memStore) SetOutcomes(_ context.Context, _ string, outs []reconcile.Outcome) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outcomes = append(s.outcomes, outs...)
	return nil
}

// busyRuns is a LifecycleRuns with a fixed set of people in flight.
type busyRuns map[string]bool

func (b busyRuns) InFlight(_ context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, id := range ids {
		if b[id] {
			out[id] = true
		}
	}
	return out, nil
}

// deptPlanner grants ldap/all-staff to everyone and ldap/engineering to
// engineers.
type deptPlanner struct{}

func (deptPlanner) PlanAccess(_ context.Context, p hr.Person) (activities.PlanAccessResult, error) {
	ents := []string{"all-staff"}
	reasons := map[string][]string{"ldap/all-staff": {"rule staff"}}
	if p.Department == "Engineering" {
		ents = append(ents, "engineering")
		reasons["ldap/engineering"] = []string{"rule engineering -> role engineer"}
	}
	return activities.PlanAccessResult{PolicyVersion: "v1", Reasons: reasons,
		Applications: []activities.AppAccess{{Application: "ldap", Entitlements: ents}}}, nil
}

const reconcilePolicy = `schema: 1
applications:
  - name: ldap
    connector: ldap
    owner: E100001
    reconciliation:
      ignore: [svc-*]
    entitlements:
      - {name: all-staff, risk: low}
      - {name: engineering, risk: low}
      - {name: vpn, risk: medium}
`

func rosterPerson(id, dept string) hr.Person {
	return hr.Person{EmployeeID: id, GivenName: "Given" + id, FamilyName: "Family" + id, Email: strings.ToLower(id) + "@example.com",
		Department: dept, Title: "Clerk", Location: "Berlin", EmploymentType: hr.TypeEmployee, Status: hr.StatusActive,
		StartDate: hr.Date{Time: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}}
}

// driftFixture is an LDAP directory drifted every way there is.
type driftFixture struct {
	conn  *pagedConn
	store *memStore
	acts  *activities.Activities
	env   *testsuite.TestActivityEnvironment
	beats []activities.ScanProgress
}

func newDriftFixture(t *testing.T) *driftFixture {
	t.Helper()
	pol, err := policy.Parse("reconcile.yaml", []byte(reconcilePolicy))
	require.NoError(t, err)
	f := &driftFixture{
		conn: &pagedConn{accounts: []connectors.Account{
			{Username: "alice", EmployeeID: "E100001", Entitlements: []string{"all-staff", "vpn"}},
			{Username: "bob", EmployeeID: "E100002", Entitlements: []string{"all-staff"}},
			{Username: "bobold", EmployeeID: "E100006", Disabled: true},
			{Username: "carol", Entitlements: []string{"all-staff", "wiki-admins"}},
			{Username: "dave", EmployeeID: "E100004", Entitlements: []string{"root-ish"}},
			{Username: "erin", EmployeeID: "E100005", Disabled: true, Entitlements: []string{"all-staff"}},
			{Username: "frank", EmployeeID: "E100007", Entitlements: []string{"all-staff", "vpn"}},
			{Username: "mystery"},
			{Username: "svc-backup", Entitlements: []string{"vpn"}},
		}},
		store: &memStore{
			roster: map[string]hr.Person{
				"E100001": rosterPerson("E100001", "Engineering"), "E100003": rosterPerson("E100003", "Sales"),
				"E100004": rosterPerson("E100004", "Sales"), "E100005": rosterPerson("E100005", "Sales"),
				"E100007": rosterPerson("E100007", "Sales"), "E100008": rosterPerson("E100008", "Sales"),
				"E100009": rosterPerson("E100009", "Engineering"),
			},
			usernames: map[string]string{"E100003": "carol", "E100009": "hank", "E100001": "alice"},
			holdings: map[string][]ledger.Holding{"E100007": {
				{EmployeeID: "E100007", Application: "ldap", Account: "frank", Entitlement: "vpn", State: ledger.StateGranted,
					Justification: ledger.Justification{Event: ledger.EventMover, ApprovalID: "mover-E100007-x/ldap/vpn"}},
			}},
			seen: map[string]bool{},
		},
	}
	f.acts = &activities.Activities{
		Connectors: map[string]connectors.Connector{"ldap": f.conn}, Planner: deptPlanner{}, Policy: fixedPolicy{pol},
		Reconciliation: &activities.Reconciliation{Store: f.store, Runs: busyRuns{"E100004": true}},
	}
	var suite testsuite.WorkflowTestSuite
	f.env = suite.NewTestActivityEnvironment()
	f.env.RegisterActivity(f.acts)
	f.env.SetOnActivityHeartbeatListener(func(_ *activity.Info, d converter.EncodedValues) {
		var p activities.ScanProgress
		require.NoError(t, d.Get(&p))
		f.beats = append(f.beats, p)
	})
	return f
}

func (f *driftFixture) scan(t *testing.T, in activities.ScanInput) activities.ScanResult {
	t.Helper()
	v, err := f.env.ExecuteActivity(f.acts.ScanApplication, in)
	require.NoError(t, err)
	var res activities.ScanResult
	require.NoError(t, v.Get(&res))
	return res
}

// found lists the stored items as "class account/entitlement action".
func (f *driftFixture) found() []string {
	var out []string
	for _, it := range f.store.items {
		s := string(it.Class) + " " + it.Account
		if it.Entitlement != "" {
			s += "/" + it.Entitlement
		}
		if it.Action != "" {
			s += " " + string(it.Action)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func TestScanApplicationClassifiesEveryDifference(t *testing.T) {
	f := newDriftFixture(t)
	res := f.scan(t, activities.ScanInput{RunID: "reconcile-1", App: "ldap", PageSize: 3, Samples: 1})

	assert.Equal(t, []string{
		"excess alice/vpn revoke",         // held, nothing justifies it
		"missing  create",                 // E100008: no account, no username yet
		"missing /all-staff grant",        // E100008's missing entitlement
		"missing alice/engineering grant", // policy grants it, not held
		"missing erin enable",             // disabled though active
		"missing hank create",             // E100009: username reserved, no account
		"missing hank/all-staff grant",
		"missing hank/engineering grant",
		"orphan bob disable",          // nobody active owns it
		"unmanaged carol/wiki-admins", // not declared in the policy
		"unmanaged mystery",           // no employee ID, no reserved username
		"unmanaged svc-backup",        // the ignore list
	}, f.found())
	// Not listed: bobold (a leaver's account, already disabled), dave
	// (onboarding in flight), frank's vpn (approved, in the ledger),
	// carol's account itself (her reserved username makes it hers).

	assert.Equal(t, 9, res.Accounts)
	assert.Equal(t, 2, res.People, "E100008 and E100009 have no account")
	assert.Equal(t, 1, res.Skipped, "dave's lifecycle run is in flight")
	assert.Equal(t, map[reconcile.Class]int{reconcile.ClassExcess: 1, reconcile.ClassMissing: 7, reconcile.ClassOrphan: 1, reconcile.ClassUnmanaged: 3}, res.Counts)
	assert.Equal(t, 9, res.Fixes, "unmanaged items are never fixed")
	assert.Len(t, res.Samples, 4, "one sample per class")
	for _, s := range res.Samples {
		assert.Nil(t, s.Attributes, "samples travel into the history without personal attributes")
	}
	assert.Equal(t, []string{"ldap"}, f.store.forgotten, "the scratch rows go when the scan ends")

	for _, it := range f.store.items {
		if it.Class == reconcile.ClassMissing && it.Entitlement == "engineering" {
			assert.Equal(t, []string{"rule engineering -> role engineer"}, it.Rules)
			assert.Equal(t, "v1", it.PolicyVersion)
		}
		if it.Action == reconcile.ActionCreate && it.EmployeeID == "E100008" {
			require.NotNil(t, it.Attributes)
			assert.Equal(t, "GivenE100008", it.Attributes.GivenName, "names to reserve a username and create the account")
		}
	}

	assert.Equal(t, []string{"", "3", "6"}, f.conn.tokens, "pages of 3 accounts")
	// The SDK throttles heartbeats, so the test sees the first one: the
	// position after the first page.
	require.NotEmpty(t, f.beats)
	assert.Equal(t, activities.ScanProgress{App: "ldap", Phase: activities.PhaseAccounts, PageToken: "3", Accounts: 3}, f.beats[0])
}

func TestScanApplicationResumesFromItsHeartbeat(t *testing.T) {
	f := newDriftFixture(t)
	// A first attempt read two pages (bob is on the first), then died.
	for _, id := range []string{"E100001", "E100002", "E100006", "E100003", "E100004", "E100005"} {
		f.store.seen["ldap/"+id] = true
	}
	f.env.SetHeartbeatDetails(activities.ScanProgress{App: "ldap", Phase: activities.PhaseAccounts, PageToken: "6", Accounts: 6, Skipped: 1})
	res := f.scan(t, activities.ScanInput{RunID: "reconcile-1", App: "ldap", PageSize: 3})
	assert.Equal(t, []string{"6"}, f.conn.tokens, "the listing continues where the heartbeat left it")
	assert.Equal(t, 9, res.Accounts, "counts carry over")
	assert.Equal(t, 1, res.Skipped)
	assert.NotContains(t, f.found(), "orphan bob disable", "pages read before are not read again")

	// A retry of a page already saved stores nothing twice.
	n := len(f.store.items)
	f.env.SetHeartbeatDetails(activities.ScanProgress{App: "ldap", Phase: activities.PhaseAccounts, PageToken: "6", Accounts: 6})
	f.scan(t, activities.ScanInput{RunID: "reconcile-1", App: "ldap", PageSize: 3})
	assert.Len(t, f.store.items, n)
}

func TestScanApplicationKeepsToItsScope(t *testing.T) {
	f := newDriftFixture(t)
	res := f.scan(t, activities.ScanInput{RunID: "reconcile-1", App: "ldap",
		Scope: activities.ReconcileScope{EmployeeIDs: []string{"E100001", "E100009"}, Accounts: []string{"mystery"}}})
	assert.Equal(t, []string{
		"excess alice/vpn revoke",
		"missing alice/engineering grant",
		"missing hank create",
		"missing hank/all-staff grant",
		"missing hank/engineering grant",
		"unmanaged mystery",
	}, f.found())
	assert.Equal(t, 9, res.Accounts, "every account is read, only the scope is judged")
	assert.Zero(t, res.Skipped, "dave is out of scope")
}

func TestScanApplicationRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		edit func(*activities.Activities, *activities.ScanInput)
		want string
	}{
		{"no run ID", func(_ *activities.Activities, in *activities.ScanInput) { in.RunID = "" }, "run ID is empty"},
		{"no store", func(a *activities.Activities, _ *activities.ScanInput) { a.Reconciliation = nil }, "no reconciliation store"},
		{"unknown app", func(_ *activities.Activities, in *activities.ScanInput) { in.App = "crm" }, `no connector for application "crm"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newDriftFixture(t)
			in := activities.ScanInput{RunID: "reconcile-1", App: "ldap"}
			tc.edit(f.acts, &in)
			_, err := f.env.ExecuteActivity(f.acts.ScanApplication, in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), string(connectors.KindInvalid))
			assert.Empty(t, f.conn.tokens, "nothing read")
		})
	}
}

func TestReconcileFixBatchChecksEachItemAgain(t *testing.T) {
	f := newDriftFixture(t)
	f.store.items = []reconcile.Item{
		{Seq: 1, Class: reconcile.ClassOrphan, Application: "ldap", Account: "back", EmployeeID: "E100003", Action: reconcile.ActionDisable, Status: reconcile.StatusFound},
		{Seq: 2, Class: reconcile.ClassOrphan, Application: "ldap", Account: "gone", EmployeeID: "E100002", Action: reconcile.ActionDisable, Status: reconcile.StatusFound},
		{Seq: 3, Class: reconcile.ClassExcess, Application: "ldap", Account: "dave", EmployeeID: "E100004", Entitlement: "vpn", Action: reconcile.ActionRevoke, Status: reconcile.StatusFound},
		{Seq: 4, Class: reconcile.ClassMissing, Application: "ldap", Account: "left", EmployeeID: "E100006", Entitlement: "vpn", Action: reconcile.ActionGrant, Status: reconcile.StatusFound},
		{Seq: 5, Class: reconcile.ClassUnmanaged, Application: "ldap", Account: "svc-x", Status: reconcile.StatusFound},
		{Seq: 6, Class: reconcile.ClassMissing, Application: "ldap", EmployeeID: "E100009", Entitlement: "all-staff", Action: reconcile.ActionGrant, Status: reconcile.StatusFound},
		{Seq: 7, Class: reconcile.ClassMissing, Application: "scim", Account: "x", EmployeeID: "E100001", Entitlement: "all-staff", Action: reconcile.ActionGrant, Status: reconcile.StatusFound},
	}
	v, err := f.env.ExecuteActivity(f.acts.ReconcileFixBatch, activities.FixBatchInput{RunID: "reconcile-1", Apps: []string{"ldap"}, Limit: 10})
	require.NoError(t, err)
	var b activities.FixBatch
	require.NoError(t, v.Get(&b))

	var got []string
	for _, it := range b.Items {
		got = append(got, it.Account)
	}
	assert.Equal(t, []string{"gone", "hank"}, got, "the orphan still gone, and the grant with the username reserved since")
	assert.Equal(t, 3, b.Skipped)
	assert.Equal(t, []reconcile.Outcome{
		{Seq: 1, Status: reconcile.StatusSkipped, Note: "E100003 is active again"},
		{Seq: 3, Status: reconcile.StatusSkipped, Note: "a lifecycle run of E100004 started since the scan"},
		{Seq: 4, Status: reconcile.StatusSkipped, Note: "E100006 is no longer active"},
	}, f.store.outcomes)
	assert.True(t, b.Done)
	assert.Equal(t, int64(6), b.Next)
}

func TestRecordFixOutcomesRefusesAnUnknownStatus(t *testing.T) {
	f := newDriftFixture(t)
	_, err := f.env.ExecuteActivity(f.acts.RecordFixOutcomes, activities.FixOutcomesInput{RunID: "reconcile-1",
		Outcomes: []reconcile.Outcome{{Seq: 1, Status: "done"}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `status "done"`)
	assert.Empty(t, f.store.outcomes)
}

func TestVisibilityRunsAsksOnlyAboutWellFormedIDs(t *testing.T) {
	got, err := activities.VisibilityRuns{}.InFlight(context.Background(), []string{"x') OR ('1'='1", ""})
	require.NoError(t, err, "no well-formed ID: no query, no client needed")
	assert.Empty(t, got)
}
