package reconcile_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/reconcile"
	"github.com/provisio-dev/provisio/internal/roster"
	"github.com/provisio-dev/provisio/internal/storetest"
	"github.com/provisio-dev/provisio/internal/testenv"
)

// testPool is a migrated database of its own, dropped when the test ends
// (ledger rows cannot be deleted). PostgreSQL must be up: the test fails,
// never skips, without it.
func testPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	return storetest.Pool(t, "reconciletest")
}

func staff(id, dept string) hr.Person {
	return hr.Person{EmployeeID: id, GivenName: "G" + id, FamilyName: "F" + id, Email: id + "@example.com",
		Department: dept, Title: "Clerk", Location: "Berlin", EmploymentType: hr.TypeEmployee,
		StartDate: hr.Date{Time: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}, Status: hr.StatusActive}
}

func save(t *testing.T, rs *roster.Store, source string, p hr.Person, status roster.Status) {
	t.Helper()
	require.NoError(t, rs.Save(testenv.Context(t), source, roster.State{EmployeeID: p.EmployeeID, Person: p, Hash: roster.Hash(p), Status: status, Line: 2}))
}

func TestStoreReadsRosterUsernamesAndLedger(t *testing.T) {
	pool := testPool(t)
	ctx := testenv.Context(t)
	s := reconcile.NewStore(pool)
	rs := roster.NewStore(pool)
	save(t, rs, "a", staff("E100001", "Engineering"), roster.StatusActive)
	save(t, rs, "a", staff("E100002", "Sales"), roster.StatusTerminated)
	save(t, rs, "b", staff("E100003", "Sales"), roster.StatusActive)
	save(t, rs, "a", staff("E100004", "Sales"), roster.StatusRemoved)
	save(t, rs, "b", staff("E100004", "Support"), roster.StatusActive)

	active, err := s.ActivePeople(ctx, "", []string{"E100001", "E100002", "E100003", "E100004", "E100009"})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"E100001", "E100003", "E100004"}, keys(active), "active in any feed")
	assert.Equal(t, "Support", active["E100004"].Department, "the active record, not the removed one")
	active, err = s.ActivePeople(ctx, "a", []string{"E100001", "E100003", "E100004"})
	require.NoError(t, err)
	assert.Equal(t, []string{"E100001"}, keys(active), "active in feed a only")

	_, err = pool.Exec(ctx, `INSERT INTO usernames (username, employee_id) VALUES ('anna', 'E100001'), ('carl', 'E100003')`)
	require.NoError(t, err)
	owners, err := s.Owners(ctx, []string{"anna", "nobody"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"anna": "E100001"}, owners)
	names, err := s.Usernames(ctx, []string{"E100003", "E100004"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"E100003": "carl"}, names)

	lg := ledger.New(pool)
	record := func(emp, app string, action ledger.Action, ent string, j ledger.Justification, n int) {
		_, err := lg.Record(ctx, ledger.Entry{EmployeeID: emp, Application: app, Account: "anna", Entitlement: ent, Action: action,
			Justification: j, WorkflowID: "wf", RunID: "run", ActivityID: fmt.Sprint(n)})
		require.NoError(t, err)
	}
	joiner := ledger.Justification{Event: ledger.EventJoiner}
	record("E100001", "ldap", ledger.ActionCreated, "", joiner, 1)
	record("E100001", "ldap", ledger.ActionGranted, "vpn", ledger.Justification{Event: ledger.EventJoiner, ApprovalID: "req-1"}, 2)
	record("E100001", "ldap", ledger.ActionGranted, "old", joiner, 3)
	record("E100001", "ldap", ledger.ActionRevoked, "old", joiner, 4)
	record("E100001", "postgres", ledger.ActionGranted, "prod_read", joiner, 5)
	record("E100003", "ldap", ledger.ActionCreated, "", joiner, 6)
	held, err := s.Holdings(ctx, "ldap", []string{"E100001", "E100003", "E100009"})
	require.NoError(t, err)
	require.Len(t, held["E100001"], 2, "the account and vpn; old was revoked, prod_read is another application")
	assert.Equal(t, "vpn", held["E100001"][1].Entitlement)
	assert.Equal(t, "req-1", held["E100001"][1].ApprovalID)
	assert.Len(t, held["E100003"], 1)
	assert.NotContains(t, held, "E100009")
}

func TestStoreFindsPeopleWithoutAnAccount(t *testing.T) {
	pool := testPool(t)
	ctx := testenv.Context(t)
	s := reconcile.NewStore(pool)
	rs := roster.NewStore(pool)
	for _, id := range []string{"E100001", "E100002", "E100003", "E100004"} {
		save(t, rs, "a", staff(id, "Sales"), roster.StatusActive)
	}
	save(t, rs, "b", staff("E100005", "Sales"), roster.StatusActive)
	save(t, rs, "a", staff("E100006", "Sales"), roster.StatusTerminated)
	require.NoError(t, s.MarkSeen(ctx, "run-1", "ldap", []string{"E100002", "E100002", "E100006"}))
	require.NoError(t, s.MarkSeen(ctx, "run-2", "ldap", []string{"E100001"}))

	ids := func(q reconcile.UnseenQuery) []string {
		t.Helper()
		q.RunID, q.App = "run-1", "ldap"
		if q.Limit == 0 {
			q.Limit = 10
		}
		people, err := s.Unseen(ctx, q)
		require.NoError(t, err)
		out := []string{}
		for _, p := range people {
			out = append(out, p.EmployeeID)
		}
		return out
	}
	assert.Equal(t, []string{"E100001", "E100003", "E100004", "E100005"}, ids(reconcile.UnseenQuery{}), "active, not seen in this run, in ID order")
	assert.Equal(t, []string{"E100001", "E100003"}, ids(reconcile.UnseenQuery{Limit: 2}))
	assert.Equal(t, []string{"E100004", "E100005"}, ids(reconcile.UnseenQuery{After: "E100003"}))
	assert.Equal(t, []string{"E100001", "E100003", "E100004"}, ids(reconcile.UnseenQuery{Source: "a"}))
	assert.Equal(t, []string{"E100004"}, ids(reconcile.UnseenQuery{EmployeeIDs: []string{"E100002", "E100004"}}))

	require.NoError(t, s.ForgetSeen(ctx, "run-1", "ldap"))
	assert.Contains(t, ids(reconcile.UnseenQuery{}), "E100002", "a finished scan's scratch rows are gone")
	var left int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM reconcile_seen`).Scan(&left))
	assert.Equal(t, 1, left, "another run's rows stay")
}

func TestStoreKeepsFindingsOnce(t *testing.T) {
	pool := testPool(t)
	ctx := testenv.Context(t)
	s := reconcile.NewStore(pool)
	attrs := &connectors.Account{EmployeeID: "E100003", GivenName: "Zoë", FamilyName: "O'Brien", Email: "z@example.com"}
	page := []reconcile.Item{
		{Class: reconcile.ClassOrphan, Application: "ldap", Account: "zombie", EmployeeID: "E900001", Action: reconcile.ActionDisable, Reason: "gone"},
		{Class: reconcile.ClassMissing, Application: "ldap", EmployeeID: "E100003", Action: reconcile.ActionCreate, Reason: "no account", Attributes: attrs, Rules: []string{"rule staff"}, PolicyVersion: "v1"},
		{Class: reconcile.ClassMissing, Application: "ldap", EmployeeID: "E100003", Entitlement: "all-staff", Action: reconcile.ActionGrant, Reason: "policy"},
		{Class: reconcile.ClassUnmanaged, Application: "ldap", Account: "svc-x", Reason: "ignored"},
		{Class: reconcile.ClassExcess, Application: "postgres", Account: "anna", EmployeeID: "E100001", Entitlement: "prod_read", Action: reconcile.ActionRevoke, Reason: "nothing"},
	}
	require.NoError(t, s.SaveItems(ctx, "run-1", page))
	require.NoError(t, s.SaveItems(ctx, "run-1", page), "a page saved again after a retry")
	require.NoError(t, s.SaveItems(ctx, "run-2", page[:1]))

	all, err := s.Items(ctx, "run-1", reconcile.ItemQuery{})
	require.NoError(t, err)
	require.Len(t, all, 5, "each finding once")
	for i := range all {
		assert.Equal(t, page[i].Class, all[i].Class, "in the order found")
		assert.Equal(t, reconcile.StatusFound, all[i].Status)
	}
	assert.Equal(t, attrs, all[1].Attributes, "attributes round-trip")
	assert.Equal(t, []string{"rule staff"}, all[1].Rules)
	assert.Nil(t, all[0].Attributes)

	sum, err := s.Summarize(ctx, "run-1", "ldap", 1)
	require.NoError(t, err)
	assert.Equal(t, map[reconcile.Class]int{reconcile.ClassOrphan: 1, reconcile.ClassMissing: 2, reconcile.ClassUnmanaged: 1}, sum.Counts)
	assert.Equal(t, 3, sum.Fixes)
	require.Len(t, sum.Samples, 3, "one per class")
	for _, it := range sum.Samples {
		assert.Nil(t, it.Attributes, "samples carry no personal attributes")
	}

	pending, err := s.Items(ctx, "run-1", reconcile.ItemQuery{Apps: []string{"ldap"}, Pending: true, Limit: 2})
	require.NoError(t, err)
	require.Len(t, pending, 2)
	assert.Equal(t, "zombie", pending[0].Account)
	require.NoError(t, s.SetOutcomes(ctx, "run-1", []reconcile.Outcome{
		{Seq: pending[0].Seq, Status: reconcile.StatusFixed},
		{Seq: pending[1].Seq, Status: reconcile.StatusFailed, Note: "ldap EnsureAccount: Unavailable"},
	}))
	pending, err = s.Items(ctx, "run-1", reconcile.ItemQuery{Pending: true})
	require.NoError(t, err)
	require.Len(t, pending, 2, "the grant and the revocation are left; unmanaged is never pending")
	next, err := s.Items(ctx, "run-1", reconcile.ItemQuery{AfterSeq: pending[0].Seq})
	require.NoError(t, err)
	assert.Len(t, next, 2)
	all, err = s.Items(ctx, "run-1", reconcile.ItemQuery{})
	require.NoError(t, err)
	assert.Equal(t, reconcile.StatusFixed, all[0].Status)
	assert.Equal(t, reconcile.StatusFailed, all[1].Status)
	assert.Equal(t, "ldap EnsureAccount: Unavailable", all[1].Outcome)

	assert.Error(t, s.SetOutcomes(ctx, "run-1", []reconcile.Outcome{{Seq: 1, Status: "done"}}))
	assert.Error(t, s.SaveItems(ctx, "run-1", []reconcile.Item{{Class: "zombie", Application: "ldap"}}))
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
