package ledger

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/store"
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
		{"unknown verification", func(e *Entry) { e.Action, e.VerifiedAt, e.VerifiedBy = ActionDisabled, time.Now(), "trust-me" },
			`verified by "trust-me" is not one of`},
		{"verified by without a time", func(e *Entry) { e.Action, e.VerifiedBy = ActionDisabled, VerifiedReadBack },
			"verified at and verified by go together"},
		{"verified at without how", func(e *Entry) { e.Action, e.VerifiedAt = ActionDisabled, time.Now() },
			"verified at and verified by go together"},
		{"verified create", func(e *Entry) { e.VerifiedAt, e.VerifiedBy = time.Now(), VerifiedReadBack },
			`requested or verified times given for action "created"`},
		{"requested grant", func(e *Entry) { e.Action, e.Entitlement, e.RequestedAt = ActionGranted, "vpn", time.Now() },
			`requested or verified times given for action "granted"`},
		{"fallback-delete on a disable", func(e *Entry) {
			e.Action, e.VerifiedAt, e.VerifiedBy = ActionDisabled, time.Now(), VerifiedFallbackDelete
		},
			`fallback-delete given for action "disabled"`},
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

// verified returns a revocation of emp's account in app, asked at
// requested and verified by how at verifiedAt.
func verified(emp, app string, action Action, ent string, seq int, how string, requested, verifiedAt time.Time) Entry {
	e := entry(emp, app, action, ent, seq)
	e.Event, e.Rules, e.WorkflowID = EventLeaver, nil, "offboarding-"+emp
	e.RequestedAt, e.VerifiedAt, e.VerifiedBy = requested, verifiedAt, how
	return e
}

func TestRecordVerificationRoundTrip(t *testing.T) {
	s, pool := testStore(t)
	ctx := testenv.Context(t)
	requested := time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)
	// Microseconds survive; PostgreSQL keeps no finer.
	confirmed := requested.Add(90*time.Second + 123456*time.Microsecond)
	written := []Entry{
		verified("E100001", "ldap", ActionDisabled, "", 1, VerifiedReadBack, requested, confirmed),
		verified("E100001", "ldap", ActionRevoked, "staff", 2, VerifiedReadBack, requested, confirmed),
		verified("E100001", "scim", ActionDeleted, "", 3, VerifiedFallbackDelete, requested, confirmed),
		// A revocation as written before verification existed, and one
		// asked for whose read-back is not recorded.
		verified("E100001", "pg", ActionDisabled, "", 4, "", time.Time{}, time.Time{}),
		verified("E100001", "pg", ActionDeleted, "", 5, "", requested, time.Time{}),
		entry("E100001", "pg", ActionCreated, "", 6),
	}
	for _, e := range written {
		wrote, err := s.Record(ctx, e)
		require.NoError(t, err)
		require.True(t, wrote)
	}
	got, err := s.Trail(ctx, "E100001", time.Time{})
	require.NoError(t, err)
	require.Len(t, got, len(written))
	for i, want := range written {
		assert.True(t, want.RequestedAt.Equal(got[i].RequestedAt), "requested at of %d: %s", i, got[i].RequestedAt)
		assert.True(t, want.VerifiedAt.Equal(got[i].VerifiedAt), "verified at of %d: %s", i, got[i].VerifiedAt)
		want.Seq, want.At, want.RequestedAt, want.VerifiedAt = got[i].Seq, got[i].At, got[i].RequestedAt, got[i].VerifiedAt
		assert.Equal(t, want, got[i], "entry %d", i)
	}

	// The zero time is stored as NULL, never as year 1, so SQL readers
	// see "not verified" for what it is.
	rows, err := pool.Query(ctx, `SELECT activity_id, requested_at IS NULL, verified_at IS NULL, verified_by
		FROM access_ledger ORDER BY seq`)
	require.NoError(t, err)
	type stored struct {
		id                    string
		noRequest, noVerified bool
		by                    string
	}
	var raw []stored
	for rows.Next() {
		var r stored
		require.NoError(t, rows.Scan(&r.id, &r.noRequest, &r.noVerified, &r.by))
		raw = append(raw, r)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, []stored{
		{"1", false, false, VerifiedReadBack}, {"2", false, false, VerifiedReadBack}, {"3", false, false, VerifiedFallbackDelete},
		{"4", true, true, ""}, {"5", false, true, ""}, {"6", true, true, ""},
	}, raw)
}

// TestDatabaseRefusesBadVerification writes rows by hand, past Validate:
// the table's own checks must refuse what Validate refuses.
func TestDatabaseRefusesBadVerification(t *testing.T) {
	_, pool := testStore(t)
	ctx := testenv.Context(t)
	insert := func(action, ent, requested, verifiedAt, by string) error {
		_, err := pool.Exec(ctx, `INSERT INTO access_ledger (employee_id, application, account, entitlement, action,
			event, workflow_id, run_id, activity_id, requested_at, verified_at, verified_by)
			VALUES ('E1', 'ldap', 'a', $1, $2, 'leaver', 'w', 'r', $3, $4::timestamptz, $5::timestamptz, $6)`,
			ent, action, testenv.RandomLetters(8), nullIfEmpty(requested), nullIfEmpty(verifiedAt), by)
		return err
	}
	const when = "2026-02-01T09:00:00Z"
	tests := []struct {
		name                           string
		action, ent, requested, at, by string
		constraint                     string // "" when the row is fine
	}{
		{"verified disable", "disabled", "", when, when, "read-back", ""},
		{"verified revoke", "revoked", "vpn", when, when, "read-back", ""},
		{"fallback delete", "deleted", "", when, when, "fallback-delete", ""},
		{"unverified disable", "disabled", "", "", "", "", ""},
		{"requested, not yet verified", "disabled", "", when, "", "", ""},
		{"unknown way", "disabled", "", when, when, "trust-me", "access_ledger_verified_by"},
		{"how without when", "disabled", "", when, "", "read-back", "access_ledger_verified_together"},
		{"when without how", "disabled", "", when, when, "", "access_ledger_verified_together"},
		{"verified create", "created", "", "", when, "read-back", "access_ledger_verified_revocation"},
		{"requested grant", "granted", "vpn", when, "", "", "access_ledger_verified_revocation"},
		{"verified enable", "enabled", "", when, when, "read-back", "access_ledger_verified_revocation"},
		{"fallback-delete on a disable", "disabled", "", when, when, "fallback-delete", "access_ledger_fallback_delete"},
		{"fallback-delete on a revoke", "revoked", "vpn", when, when, "fallback-delete", "access_ledger_fallback_delete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := insert(tt.action, tt.ent, tt.requested, tt.at, tt.by)
			if tt.constraint == "" {
				require.NoError(t, err)
				return
			}
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr)
			assert.Equal(t, "23514", pgErr.Code, "check_violation")
			assert.Equal(t, tt.constraint, pgErr.ConstraintName)
		})
	}
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// TestMigrationKeepsEarlierRows writes a revocation into a ledger as it
// was before verification existed, then migrates: the old row passes the
// new checks and reads back unverified, and is still append-only.
func TestMigrationKeepsEarlierRows(t *testing.T) {
	ctx := testenv.Context(t)
	url := storetest.Database(t, "ledgermig")
	require.NoError(t, store.EnsureDatabase(ctx, url))
	pool, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	// Apply the migrations before 0006 as store.Migrate would, recording
	// them so Migrate then applies only the rest.
	files, err := filepath.Glob("../store/migrations/*.sql")
	require.NoError(t, err)
	sort.Strings(files)
	_, err = pool.Exec(ctx, `CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`)
	require.NoError(t, err)
	applied := 0
	for _, f := range files {
		version := strings.TrimSuffix(filepath.Base(f), ".sql")
		if version >= "0006" {
			break
		}
		body, err := os.ReadFile(f)
		require.NoError(t, err)
		_, err = pool.Exec(ctx, string(body))
		require.NoError(t, err, version)
		_, err = pool.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, version)
		require.NoError(t, err)
		applied++
	}
	require.Equal(t, 5, applied)
	_, err = pool.Exec(ctx, `INSERT INTO access_ledger (employee_id, application, account, action, event, workflow_id, run_id, activity_id)
		VALUES ('E100001', 'ldap', 'ada', 'disabled', 'leaver', 'offboarding-E100001', 'r', '1')`)
	require.NoError(t, err)

	require.NoError(t, store.Migrate(ctx, pool))
	trail, err := New(pool).Trail(ctx, "E100001", time.Time{})
	require.NoError(t, err)
	require.Len(t, trail, 1)
	assert.Equal(t, ActionDisabled, trail[0].Action)
	assert.True(t, trail[0].RequestedAt.IsZero())
	assert.True(t, trail[0].VerifiedAt.IsZero())
	assert.Empty(t, trail[0].VerifiedBy)
	rs := Removals(trail)
	require.Len(t, rs, 1)
	assert.True(t, rs[0].Removed)
	assert.False(t, rs[0].Verified, "a disable from before verification is not verified")

	_, err = pool.Exec(ctx, `UPDATE access_ledger SET verified_by = 'read-back', verified_at = now()`)
	assert.ErrorContains(t, err, "append-only", "nobody verifies an old row after the fact")
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

// minuteEntries returns at(i), minute i of 2025-01-01 UTC, and a builder
// of E100001's entry number i at that minute, changed by mods.
func minuteEntries() (func(int) time.Time, func(int, string, Action, string, ...func(*Entry)) Entry) {
	at := func(i int) time.Time { return time.Date(2025, 1, 1, 0, i, 0, 0, time.UTC) }
	return at, func(i int, app string, action Action, ent string, mods ...func(*Entry)) Entry {
		x := entry("E100001", app, action, ent, i)
		x.Seq, x.At = int64(i), at(i)
		for _, m := range mods {
			m(&x)
		}
		return x
	}
}

func TestFold(t *testing.T) {
	at, e := minuteEntries()
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

func TestRemovals(t *testing.T) {
	at, e := minuteEntries()
	readBack := func(x *Entry) {
		x.Event, x.WorkflowID, x.RunID = EventLeaver, "offboarding-E100001", "run-9"
		x.RequestedAt, x.VerifiedAt, x.VerifiedBy = x.At.Add(-time.Minute), x.At, VerifiedReadBack
	}
	fallback := func(x *Entry) { readBack(x); x.VerifiedBy = VerifiedFallbackDelete }
	legacy := func(x *Entry) { x.Event = EventLeaver }
	disabled := func(x *Entry) { x.Disabled = true }
	// r is the part of a Removal each case states.
	type r struct {
		app, state        string
		ents              []string
		removed, verified bool
		by                string
		since             int // entry that set the state
		gap               string
	}
	tests := []struct {
		name    string
		entries []Entry
		want    []r
	}{
		{"nothing recorded", nil, []r{}},
		{"active account", []Entry{e(1, "ldap", ActionCreated, ""), e(2, "ldap", ActionGranted, "staff")},
			[]r{{"ldap", StateEnabled, []string{"staff"}, false, false, "", 1, "disable not confirmed"}}},
		{"disabled and revoked, verified",
			[]Entry{e(1, "ldap", ActionCreated, ""), e(2, "ldap", ActionGranted, "staff"),
				e(3, "ldap", ActionDisabled, "", readBack), e(4, "ldap", ActionRevoked, "staff", readBack)},
			[]r{{"ldap", StateDisabled, []string{}, true, true, VerifiedReadBack, 3, ""}}},
		{"disabled but an entitlement is still held",
			[]Entry{e(1, "ldap", ActionCreated, ""), e(2, "ldap", ActionGranted, "vpn"), e(3, "ldap", ActionGranted, "staff"),
				e(4, "ldap", ActionDisabled, "", readBack)},
			[]r{{"ldap", StateDisabled, []string{"staff", "vpn"}, false, false, VerifiedReadBack, 4, "revoke of staff, vpn not confirmed"}}},
		{"disable recorded before verification existed",
			[]Entry{e(1, "ldap", ActionCreated, ""), e(2, "ldap", ActionDisabled, "", legacy)},
			[]r{{"ldap", StateDisabled, []string{}, true, false, "", 2, "disabled without read-back"}}},
		{"created disabled, never disabled by a leaver",
			[]Entry{e(1, "ldap", ActionCreated, "", disabled)},
			[]r{{"ldap", StateDisabled, []string{}, true, false, "", 1, "disabled without read-back"}}},
		{"created disabled, then the leaver's disable is verified",
			[]Entry{e(1, "ldap", ActionCreated, "", disabled), e(2, "ldap", ActionDisabled, "", readBack)},
			[]r{{"ldap", StateDisabled, []string{}, true, true, VerifiedReadBack, 2, ""}}},
		{"deleted after retention, verified",
			[]Entry{e(1, "scim", ActionCreated, ""), e(2, "scim", ActionGranted, "admins"), e(3, "scim", ActionDisabled, "", readBack),
				e(4, "scim", ActionRevoked, "admins", readBack), e(5, "scim", ActionDeleted, "", readBack)},
			[]r{{"scim", StateDeleted, []string{}, true, true, VerifiedReadBack, 5, ""}}},
		{"deleted with its entitlements in place of an ignored disable",
			[]Entry{e(1, "scim", ActionCreated, ""), e(2, "scim", ActionGranted, "admins"), e(3, "scim", ActionDeleted, "", fallback)},
			[]r{{"scim", StateDeleted, []string{}, true, true, VerifiedFallbackDelete, 3, ""}}},
		{"deleted before verification existed",
			[]Entry{e(1, "scim", ActionCreated, ""), e(2, "scim", ActionDeleted, "", legacy)},
			[]r{{"scim", StateDeleted, []string{}, true, false, "", 2, "deleted without read-back"}}},
		{"a verified disable undone by a later enable",
			[]Entry{e(1, "ldap", ActionCreated, ""), e(2, "ldap", ActionDisabled, "", readBack), e(3, "ldap", ActionEnabled, "")},
			[]r{{"ldap", StateEnabled, []string{}, false, false, "", 3, "disable not confirmed"}}},
		{"recreated after a delete",
			[]Entry{e(1, "ldap", ActionCreated, ""), e(2, "ldap", ActionGranted, "staff"), e(3, "ldap", ActionDeleted, "", readBack),
				e(4, "ldap", ActionCreated, ""), e(5, "ldap", ActionGranted, "vpn")},
			[]r{{"ldap", StateEnabled, []string{"vpn"}, false, false, "", 4, "disable not confirmed"}}},
		{"known only from a grant counts as enabled",
			[]Entry{e(1, "ldap", ActionGranted, "staff")},
			[]r{{"ldap", StateEnabled, []string{"staff"}, false, false, "", 1, "disable not confirmed"}}},
		{"one account per application, sorted",
			[]Entry{e(1, "scim", ActionCreated, ""), e(2, "ldap", ActionCreated, ""), e(3, "scim", ActionDisabled, "", readBack),
				e(4, "ldap", ActionDisabled, "", legacy)},
			[]r{{"ldap", StateDisabled, []string{}, true, false, "", 4, "disabled without read-back"},
				{"scim", StateDisabled, []string{}, true, true, VerifiedReadBack, 3, ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Removals(tt.entries)
			short := []r{}
			for _, g := range got {
				short = append(short, r{g.Application, g.State, g.Entitlements, g.Removed, g.Verified, g.VerifiedBy,
					int(g.Since.Sub(at(0)) / time.Minute), g.Gap()})
				assert.Equal(t, "ada.lovelace", g.Account)
				if g.VerifiedBy != "" {
					assert.Equal(t, g.Since, g.VerifiedAt)
					assert.Equal(t, g.Since.Add(-time.Minute), g.RequestedAt)
					assert.Equal(t, "offboarding-E100001", g.WorkflowID, "the run that set the state")
				} else {
					assert.True(t, g.VerifiedAt.IsZero())
				}
			}
			assert.Equal(t, tt.want, short)
		})
	}
}

func TestRemovalJSONFieldsAreStable(t *testing.T) {
	at := time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)
	r := Removal{Application: "ldap", Account: "ada", State: StateDisabled, Since: at, Entitlements: []string{},
		Removed: true, Verified: true, RequestedAt: at.Add(-time.Minute), VerifiedAt: at, VerifiedBy: VerifiedReadBack,
		WorkflowID: "offboarding-E100001", RunID: "r"}
	b, err := json.Marshal(r)
	require.NoError(t, err)
	assert.JSONEq(t, `{"application":"ldap","account":"ada","state":"disabled","since":"2026-02-01T09:00:00Z",
		"entitlements":[],"removed":true,"verified":true,"requestedAt":"2026-02-01T08:59:00Z",
		"verifiedAt":"2026-02-01T09:00:00Z","verifiedBy":"read-back","workflowId":"offboarding-E100001","runId":"r"}`, string(b))

	// Not verified: the verification fields are absent, not zero times.
	b, err = json.Marshal(Removals([]Entry{entry("E100001", "ldap", ActionCreated, "", 1)})[0])
	require.NoError(t, err)
	assert.NotContains(t, string(b), "verifiedAt")
	assert.NotContains(t, string(b), "requestedAt")
	assert.Contains(t, string(b), `"entitlements":[]`)
}
