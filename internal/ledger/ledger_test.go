package ledger

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/storetest"
	"github.com/provisio-dev/provisio/internal/testenv"
)

// testStore creates a throw-away database, migrates it and drops it when
// the test ends, so ledger rows (which cannot be deleted) never pile up in a
// shared database.
func testStore(t *testing.T) (*Store, *pgxpool.Pool) {
	t.Helper()
	pool := storetest.Pool(t, "ledgertest")
	return New(pool), pool
}

// entry returns a valid entry; seq makes its idempotency key unique.
func entry(emp, app string, action Action, ent string, seq int) Entry {
	return Entry{
		EmployeeID: emp, Application: app, Account: "ada.lovelace", Entitlement: ent, Action: action,
		Justification: Justification{Event: EventJoiner, Rules: []string{"rule:everyone"}},
		PolicyVersion: "v1", WorkflowID: "onboarding-" + emp, RunID: "run-1",
		ActivityID: fmt.Sprint(seq),
	}
}

func count(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(testenv.Context(t), `SELECT count(*) FROM access_ledger`).Scan(&n))
	return n
}

func TestRecordRoundTrip(t *testing.T) {
	s, _ := testStore(t)
	ctx := testenv.Context(t)
	approvedAt := time.Date(2025, 3, 4, 10, 30, 0, 0, time.UTC)
	want := Entry{
		EmployeeID: "E100001", Application: "scim", Account: "ada.lovelace", Entitlement: "admins",
		Action: ActionGranted,
		Justification: Justification{
			Event: EventTemporary, Rules: []string{"role:engineer", "rule:eng-admin"},
			ApprovalID: "req-1", Approver: "E100002", ApprovedAt: approvedAt, Note: "incident 42",
		},
		PolicyVersion: "sha256:abc", WorkflowID: "temp-E100001", RunID: "run-9", ActivityID: "12",
	}
	before := time.Now().Add(-time.Minute)
	wrote, err := s.Record(ctx, want)
	require.NoError(t, err)
	require.True(t, wrote)

	got, err := s.Trail(ctx, "E100001", time.Time{})
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Positive(t, got[0].Seq)
	assert.True(t, got[0].At.After(before), "at is set by the database")
	assert.True(t, got[0].ApprovedAt.Equal(approvedAt))
	want.Seq, want.At, want.ApprovedAt = got[0].Seq, got[0].At, got[0].ApprovedAt
	assert.Equal(t, want, got[0])

	// A disabled create and an entry without rules or approval come back as
	// written, with no invented values.
	bare := entry("E100001", "ldap", ActionCreated, "", 13)
	bare.Disabled = true
	bare.Rules = nil
	_, err = s.Record(ctx, bare)
	require.NoError(t, err)
	got, err = s.Trail(ctx, "E100001", time.Time{})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.True(t, got[1].Disabled)
	assert.Nil(t, got[1].Rules)
	assert.True(t, got[1].ApprovedAt.IsZero())
}

func TestRecordIsIdempotent(t *testing.T) {
	s, pool := testStore(t)
	ctx := testenv.Context(t)
	e := entry("E100001", "ldap", ActionCreated, "", 1)

	wrote, err := s.Record(ctx, e)
	require.NoError(t, err)
	assert.True(t, wrote)
	// The retried activity records the same key again, even with other
	// values: the first write stands.
	e.Note = "retry"
	wrote, err = s.Record(ctx, e)
	require.NoError(t, err)
	assert.False(t, wrote)
	assert.Equal(t, 1, count(t, pool))
	trail, err := s.Trail(ctx, "E100001", time.Time{})
	require.NoError(t, err)
	require.Len(t, trail, 1)
	assert.Empty(t, trail[0].Note)

	// Any part of the key that differs is another change.
	for _, mod := range []func(*Entry){
		func(e *Entry) { e.RunID = "run-2" },
		func(e *Entry) { e.WorkflowID = "other" },
		func(e *Entry) { e.ActivityID = "2" },
	} {
		e2 := entry("E100001", "ldap", ActionCreated, "", 1)
		mod(&e2)
		wrote, err := s.Record(ctx, e2)
		require.NoError(t, err)
		assert.True(t, wrote)
	}
	assert.Equal(t, 4, count(t, pool))
}

func TestRecordConcurrentRetriesWriteOnce(t *testing.T) {
	s, pool := testStore(t)
	ctx := testenv.Context(t)
	const n = 8
	wrote := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { wrote[i], errs[i] = s.Record(ctx, entry("E100001", "ldap", ActionCreated, "", 7)) })
	}
	wg.Wait()
	writes := 0
	for i := range n {
		require.NoError(t, errs[i])
		if wrote[i] {
			writes++
		}
	}
	assert.Equal(t, 1, writes)
	assert.Equal(t, 1, count(t, pool))
}

func TestRecordRejectsBadEntries(t *testing.T) {
	s, pool := testStore(t)
	ctx := testenv.Context(t)
	tests := []struct {
		name string
		mod  func(*Entry)
		want string
	}{
		{"no employee", func(e *Entry) { e.EmployeeID = "" }, "employee ID is empty"},
		{"blank employee", func(e *Entry) { e.EmployeeID = "  " }, "employee ID is empty"},
		{"no application", func(e *Entry) { e.Application = "" }, "application is empty"},
		{"no account", func(e *Entry) { e.Account = "" }, "account is empty"},
		{"no workflow ID", func(e *Entry) { e.WorkflowID = "" }, "workflow ID is empty"},
		{"no run ID", func(e *Entry) { e.RunID = "" }, "run ID is empty"},
		{"no activity ID", func(e *Entry) { e.ActivityID = "" }, "activity ID is empty"},
		{"unknown action", func(e *Entry) { e.Action = "suspended" }, `action "suspended" is not one of`},
		{"no action", func(e *Entry) { e.Action = "" }, `action "" is not one of`},
		{"grant without entitlement", func(e *Entry) { e.Action, e.Entitlement = ActionGranted, "" }, `entitlement is empty for action "granted"`},
		{"revoke without entitlement", func(e *Entry) { e.Action, e.Entitlement = ActionRevoked, "" }, `entitlement is empty for action "revoked"`},
		{"account action with entitlement", func(e *Entry) { e.Entitlement = "admins" }, `entitlement "admins" given for account action "created"`},
		{"disabled on a grant", func(e *Entry) { e.Action, e.Entitlement, e.Disabled = ActionGranted, "x", true }, `disabled is set for action "granted"`},
		{"no event", func(e *Entry) { e.Event = "" }, `event "" is not one of`},
		{"unknown event", func(e *Entry) { e.Event = "hire" }, `event "hire" is not one of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := entry("E100001", "ldap", ActionCreated, "", 1)
			tt.mod(&e)
			wrote, err := s.Record(ctx, e)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.False(t, wrote)
			assert.Equal(t, 0, count(t, pool), "a rejected entry wrote a row")
		})
	}
}

func TestLedgerIsAppendOnly(t *testing.T) {
	s, pool := testStore(t)
	ctx := testenv.Context(t)
	_, err := s.Record(ctx, entry("E100001", "ldap", ActionCreated, "", 1))
	require.NoError(t, err)

	for _, sql := range []string{
		`UPDATE access_ledger SET action = 'deleted'`,
		`UPDATE access_ledger SET note = 'rewritten' WHERE employee_id = 'E100001'`,
		`DELETE FROM access_ledger`,
		`DELETE FROM access_ledger WHERE employee_id = 'E100001'`,
		`TRUNCATE access_ledger`,
	} {
		t.Run(sql, func(t *testing.T) {
			_, err := pool.Exec(ctx, sql)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "append-only")
		})
	}
	trail, err := s.Trail(ctx, "E100001", time.Time{})
	require.NoError(t, err)
	require.Len(t, trail, 1)
	assert.Equal(t, ActionCreated, trail[0].Action)
	assert.Empty(t, trail[0].Note)

	// The database checks the action as well, for rows written by hand.
	_, err = pool.Exec(ctx, `INSERT INTO access_ledger (employee_id, application, account, action, event, workflow_id, run_id, activity_id)
		VALUES ('E1', 'ldap', 'a', 'suspended', 'joiner', 'w', 'r', 'x')`)
	assert.ErrorContains(t, err, "check constraint")
}

func TestFold(t *testing.T) {
	at := func(i int) time.Time { return time.Date(2025, 1, 1, 0, i, 0, 0, time.UTC) }
	e := func(i int, app string, action Action, ent string, mods ...func(*Entry)) Entry {
		x := entry("E100001", app, action, ent, i)
		x.Seq, x.At = int64(i), at(i)
		for _, m := range mods {
			m(&x)
		}
		return x
	}
	leaver := func(x *Entry) { x.Event, x.Rules, x.Note = EventLeaver, nil, "resigned" }
	disabled := func(x *Entry) { x.Disabled = true }
	type h struct{ app, ent, state string }
	tests := []struct {
		name    string
		entries []Entry
		want    []h
		since   map[h]int // when each holding began (entry index)
	}{
		{"nothing recorded", nil, []h{}, nil},
		{"created and granted",
			[]Entry{e(1, "ldap", ActionCreated, ""), e(2, "ldap", ActionGranted, "staff"), e(3, "ldap", ActionGranted, "vpn")},
			[]h{{"ldap", "", StateEnabled}, {"ldap", "staff", StateGranted}, {"ldap", "vpn", StateGranted}},
			map[h]int{{"ldap", "staff", StateGranted}: 2}},
		{"created disabled is held disabled",
			[]Entry{e(1, "ldap", ActionCreated, "", disabled)},
			[]h{{"ldap", "", StateDisabled}}, nil},
		{"created disabled then enabled",
			[]Entry{e(1, "ldap", ActionCreated, "", disabled), e(2, "ldap", ActionEnabled, "")},
			[]h{{"ldap", "", StateEnabled}}, map[h]int{{"ldap", "", StateEnabled}: 2}},
		{"revoked entitlement is gone",
			[]Entry{e(1, "ldap", ActionCreated, ""), e(2, "ldap", ActionGranted, "staff"), e(3, "ldap", ActionRevoked, "staff")},
			[]h{{"ldap", "", StateEnabled}}, nil},
		{"granted again after revoke is held since the new grant",
			[]Entry{e(1, "ldap", ActionGranted, "staff"), e(2, "ldap", ActionRevoked, "staff"), e(3, "ldap", ActionGranted, "staff")},
			[]h{{"ldap", "staff", StateGranted}}, map[h]int{{"ldap", "staff", StateGranted}: 3}},
		{"a second grant keeps the first",
			[]Entry{e(1, "ldap", ActionGranted, "staff"), e(2, "ldap", ActionGranted, "staff")},
			[]h{{"ldap", "staff", StateGranted}}, map[h]int{{"ldap", "staff", StateGranted}: 1}},
		{"leaver disables and revokes",
			[]Entry{e(1, "ldap", ActionCreated, ""), e(2, "ldap", ActionGranted, "staff"),
				e(3, "ldap", ActionDisabled, "", leaver), e(4, "ldap", ActionRevoked, "staff", leaver)},
			[]h{{"ldap", "", StateDisabled}}, map[h]int{{"ldap", "", StateDisabled}: 3}},
		{"deleted account drops its entitlements",
			[]Entry{e(1, "ldap", ActionCreated, ""), e(2, "ldap", ActionGranted, "staff"), e(3, "ldap", ActionDeleted, "")},
			[]h{}, nil},
		{"a grant after the account is recreated survives the old delete",
			[]Entry{e(1, "ldap", ActionCreated, ""), e(2, "ldap", ActionGranted, "staff"), e(3, "ldap", ActionDeleted, ""),
				e(4, "ldap", ActionCreated, ""), e(5, "ldap", ActionGranted, "vpn")},
			[]h{{"ldap", "", StateEnabled}, {"ldap", "vpn", StateGranted}}, map[h]int{{"ldap", "", StateEnabled}: 4}},
		{"a delete in one application leaves the others",
			[]Entry{e(1, "scim", ActionCreated, ""), e(2, "scim", ActionGranted, "admins"),
				e(3, "ldap", ActionCreated, ""), e(4, "ldap", ActionGranted, "staff"), e(5, "scim", ActionDeleted, "")},
			[]h{{"ldap", "", StateEnabled}, {"ldap", "staff", StateGranted}}, nil},
		{"disable and enable again",
			[]Entry{e(1, "ldap", ActionCreated, ""), e(2, "ldap", ActionDisabled, ""), e(3, "ldap", ActionEnabled, "")},
			[]h{{"ldap", "", StateEnabled}}, map[h]int{{"ldap", "", StateEnabled}: 3}},
		{"sorted by application, account first",
			[]Entry{e(1, "scim", ActionGranted, "b"), e(2, "scim", ActionGranted, "a"), e(3, "scim", ActionCreated, ""),
				e(4, "ldap", ActionCreated, "")},
			[]h{{"ldap", "", StateEnabled}, {"scim", "", StateEnabled}, {"scim", "a", StateGranted}, {"scim", "b", StateGranted}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Fold(tt.entries)
			short := []h{}
			for _, g := range got {
				k := h{g.Application, g.Entitlement, g.State}
				short = append(short, k)
				if i, ok := tt.since[k]; ok {
					assert.Equal(t, at(i), g.Since, "since of %v", k)
				}
				assert.Equal(t, "E100001", g.EmployeeID)
				assert.Equal(t, "ada.lovelace", g.Account)
			}
			assert.Equal(t, tt.want, short)
		})
	}
}

func TestFoldCarriesTheWhy(t *testing.T) {
	grant := entry("E100001", "scim", ActionGranted, "admins", 2)
	grant.Justification = Justification{Event: EventTemporary, ApprovalID: "req-1", Approver: "E100002",
		ApprovedAt: time.Date(2025, 2, 1, 9, 0, 0, 0, time.UTC), Note: "incident"}
	grant.PolicyVersion, grant.WorkflowID, grant.RunID = "v7", "temp-1", "run-3"
	got := Fold([]Entry{entry("E100001", "scim", ActionCreated, "", 1), grant})
	require.Len(t, got, 2)
	assert.Equal(t, grant.Justification, got[1].Justification)
	assert.Equal(t, "v7", got[1].PolicyVersion)
	assert.Equal(t, "temp-1", got[1].WorkflowID)
	assert.Equal(t, "run-3", got[1].RunID)
	assert.Equal(t, []string{"rule:everyone"}, got[0].Rules)
}

func TestHoldingsHoldersAndTrail(t *testing.T) {
	s, _ := testStore(t)
	ctx := testenv.Context(t)
	record := func(e Entry) {
		t.Helper()
		wrote, err := s.Record(ctx, e)
		require.NoError(t, err)
		require.True(t, wrote)
	}
	// Ada joins with staff and vpn; Bob joins with staff and leaves; Cy
	// had staff once, revoked by a mover.
	n := 0
	next := func() int { n++; return n }
	record(entry("E100001", "ldap", ActionCreated, "", next()))
	record(entry("E100001", "ldap", ActionGranted, "staff", next()))
	record(entry("E100001", "ldap", ActionGranted, "vpn", next()))
	record(entry("E100002", "ldap", ActionCreated, "", next()))
	record(entry("E100002", "ldap", ActionGranted, "staff", next()))
	record(entry("E100003", "ldap", ActionCreated, "", next()))
	record(entry("E100003", "ldap", ActionGranted, "staff", next()))
	record(entry("E100003", "scim", ActionGranted, "staff", next())) // same name, other application
	cut := time.Now()
	time.Sleep(20 * time.Millisecond)
	mover := entry("E100003", "ldap", ActionRevoked, "staff", next())
	mover.Event = EventMover
	record(mover)
	for _, a := range []struct {
		action Action
		ent    string
	}{{ActionDisabled, ""}, {ActionRevoked, "staff"}, {ActionRevoked, "vpn"}} {
		x := entry("E100002", "ldap", a.action, a.ent, next())
		x.Event, x.WorkflowID = EventLeaver, "offboarding-E100002"
		record(x)
	}

	holders, err := s.Holders(ctx, "ldap", "staff")
	require.NoError(t, err)
	var ids []string
	for _, h := range holders {
		ids = append(ids, h.EmployeeID)
		assert.Equal(t, "staff", h.Entitlement)
		assert.Equal(t, StateGranted, h.State)
	}
	assert.Equal(t, []string{"E100001"}, ids)

	holders, err = s.Holders(ctx, "scim", "staff")
	require.NoError(t, err)
	require.Len(t, holders, 1)
	assert.Equal(t, "E100003", holders[0].EmployeeID)

	holders, err = s.Holders(ctx, "ldap", "nobody-has-this")
	require.NoError(t, err)
	assert.Empty(t, holders)

	bob, err := s.Holdings(ctx, "E100002")
	require.NoError(t, err)
	require.Len(t, bob, 1)
	assert.Equal(t, StateDisabled, bob[0].State)
	assert.Equal(t, EventLeaver, bob[0].Event)

	nobody, err := s.Holdings(ctx, "E999999")
	require.NoError(t, err)
	assert.Empty(t, nobody)

	all, err := s.Trail(ctx, "E100003", time.Time{})
	require.NoError(t, err)
	require.Len(t, all, 4)
	for i := 1; i < len(all); i++ {
		assert.Less(t, all[i-1].Seq, all[i].Seq, "trail is oldest first")
	}
	recent, err := s.Trail(ctx, "E100003", cut)
	require.NoError(t, err)
	require.Len(t, recent, 1)
	assert.Equal(t, ActionRevoked, recent[0].Action)
	assert.Equal(t, EventMover, recent[0].Event)

	for _, err := range []error{
		func() error { _, err := s.Holdings(ctx, ""); return err }(),
		func() error { _, err := s.Holders(ctx, "", "staff"); return err }(),
		func() error { _, err := s.Holders(ctx, "ldap", ""); return err }(),
		func() error { _, err := s.Trail(ctx, " ", time.Time{}); return err }(),
	} {
		assert.ErrorContains(t, err, "is empty")
	}
}
