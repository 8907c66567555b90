package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
)

// Store is a run's findings and the reads a scan makes, on the project's
// PostgreSQL database (already migrated by store.Open).
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// ActivePeople returns the HR records of those of ids who are active in the
// synced roster: in feed source, or in any feed when source is empty. A
// person active in several feeds gets the most recently synced record.
func (s *Store) ActivePeople(ctx context.Context, source string, ids []string) (map[string]hr.Person, error) {
	out := map[string]hr.Person{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (employee_id) employee_id, record FROM roster_state
		WHERE employee_id = ANY($1) AND status = 'active' AND ($2 = '' OR source = $2)
		ORDER BY employee_id, synced_at DESC`, ids, source)
	if err != nil {
		return nil, fmt.Errorf("reconcile: active people among %d: %w", len(ids), err)
	}
	people, err := pgx.CollectRows(rows, scanPerson)
	if err != nil {
		return nil, fmt.Errorf("reconcile: active people among %d: %w", len(ids), err)
	}
	for _, p := range people {
		out[p.EmployeeID] = p
	}
	return out, nil
}

// Owners maps those of usernames that are reserved to the employee they
// are reserved for: an account without an employee ID attribute still
// belongs to the person whose username it carries.
func (s *Store) Owners(ctx context.Context, usernames []string) (map[string]string, error) {
	return s.pairs(ctx, `SELECT username, employee_id FROM usernames WHERE username = ANY($1)`, usernames, "owners of usernames")
}

// Usernames maps those of ids who have a reserved username to it.
func (s *Store) Usernames(ctx context.Context, ids []string) (map[string]string, error) {
	return s.pairs(ctx, `SELECT employee_id, username FROM usernames WHERE employee_id = ANY($1)`, ids, "usernames of people")
}

func (s *Store) pairs(ctx context.Context, sql string, keys []string, what string) (map[string]string, error) {
	out := map[string]string{}
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, sql, keys)
	if err != nil {
		return nil, fmt.Errorf("reconcile: %s (%d): %w", what, len(keys), err)
	}
	var k, v string
	_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error {
		out[k] = v
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile: %s (%d): %w", what, len(keys), err)
	}
	return out, nil
}

// Holdings returns what the access ledger says each of ids holds in app
// now (ledger.Fold of their entries there), in one query.
func (s *Store) Holdings(ctx context.Context, app string, ids []string) (map[string][]ledger.Holding, error) {
	out := map[string][]ledger.Holding{}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, at, employee_id, application, account, entitlement, action,
		disabled, event, rules, approval_id, approver, approved_at, note, policy_version, workflow_id, run_id, activity_id
		FROM access_ledger WHERE application = $1 AND employee_id = ANY($2) ORDER BY employee_id, seq`, app, ids)
	if err != nil {
		return nil, fmt.Errorf("reconcile: ledger of %d people in %s: %w", len(ids), app, err)
	}
	entries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ledger.Entry, error) {
		var e ledger.Entry
		var action string
		var approvedAt *time.Time
		err := row.Scan(&e.Seq, &e.At, &e.EmployeeID, &e.Application, &e.Account, &e.Entitlement,
			&action, &e.Disabled, &e.Event, &e.Rules, &e.ApprovalID, &e.Approver, &approvedAt,
			&e.Note, &e.PolicyVersion, &e.WorkflowID, &e.RunID, &e.ActivityID)
		e.Action = ledger.Action(action)
		if approvedAt != nil {
			e.ApprovedAt = *approvedAt
		}
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("reconcile: ledger of %d people in %s: %w", len(ids), app, err)
	}
	for start := 0; start < len(entries); {
		end := start
		for end < len(entries) && entries[end].EmployeeID == entries[start].EmployeeID {
			end++
		}
		out[entries[start].EmployeeID] = ledger.Fold(entries[start:end])
		start = end
	}
	return out, nil
}

// MarkSeen records that ids have an account in app, so the scan's second
// phase (Unseen) looks only at people without one.
func (s *Store) MarkSeen(ctx context.Context, runID, app string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO reconcile_seen (run_id, application, employee_id)
		SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING`, runID, app, ids)
	if err != nil {
		return fmt.Errorf("reconcile: mark %d accounts of %s seen: %w", len(ids), app, err)
	}
	return nil
}

// UnseenQuery asks for one page of active people with no account seen in
// an application during a run.
type UnseenQuery struct {
	RunID, App string
	// Source restricts to one roster feed; empty means every feed.
	Source string
	// EmployeeIDs restricts to these people; empty means everyone.
	EmployeeIDs []string
	// After continues after this employee ID.
	After string
	Limit int
}

// Unseen returns the next page of active people, in employee ID order,
// whose account in the application was not seen (MarkSeen) in the run.
func (s *Store) Unseen(ctx context.Context, q UnseenQuery) ([]hr.Person, error) {
	ids := q.EmployeeIDs
	if ids == nil {
		ids = []string{}
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (r.employee_id) r.employee_id, r.record FROM roster_state r
		WHERE r.status = 'active' AND ($3 = '' OR r.source = $3) AND r.employee_id > $4
		  AND (cardinality($5::text[]) = 0 OR r.employee_id = ANY($5))
		  AND NOT EXISTS (SELECT 1 FROM reconcile_seen s
		      WHERE s.run_id = $1 AND s.application = $2 AND s.employee_id = r.employee_id)
		ORDER BY r.employee_id, r.synced_at DESC LIMIT $6`, q.RunID, q.App, q.Source, q.After, ids, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("reconcile: people without an account in %s: %w", q.App, err)
	}
	people, err := pgx.CollectRows(rows, scanPerson)
	if err != nil {
		return nil, fmt.Errorf("reconcile: people without an account in %s: %w", q.App, err)
	}
	return people, nil
}

// ForgetSeen drops a finished scan's scratch rows.
func (s *Store) ForgetSeen(ctx context.Context, runID, app string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM reconcile_seen WHERE run_id = $1 AND application = $2`, runID, app); err != nil {
		return fmt.Errorf("reconcile: forget accounts seen in %s: %w", app, err)
	}
	return nil
}

// SaveItems stores findings of a run. An item already stored (same class,
// application, person, account and entitlement) is kept as it is, so a scan
// resumed from its last heartbeat may save a page twice.
func (s *Store) SaveItems(ctx context.Context, runID string, items []Item) error {
	if len(items) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, it := range items {
		if !it.Class.Valid() {
			return fmt.Errorf("reconcile: save %s: class %q is not one of orphan, missing, excess, unmanaged", it, it.Class)
		}
		var attrs []byte
		if it.Attributes != nil {
			var err error
			if attrs, err = json.Marshal(it.Attributes); err != nil {
				return fmt.Errorf("reconcile: save %s: %w", it, err)
			}
		}
		rules := it.Rules
		if rules == nil {
			rules = []string{}
		}
		b.Queue(`INSERT INTO reconcile_items (run_id, application, class, employee_id, account, entitlement,
			action, reason, rules, policy_version, attributes)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (run_id, application, class, employee_id, account, entitlement) DO NOTHING`,
			runID, it.Application, string(it.Class), it.EmployeeID, it.Account, it.Entitlement,
			string(it.Action), it.Reason, rules, it.PolicyVersion, attrs)
	}
	// One transaction: a page is saved whole or not at all.
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return fmt.Errorf("reconcile: save %d items: %w", len(items), err)
	}
	return nil
}

// itemColumns are the columns scanItem reads, in order.
const itemColumns = `seq, class, application, account, employee_id, entitlement, action, reason, rules,
	policy_version, attributes, status, outcome`

func scanItem(row pgx.CollectableRow) (Item, error) {
	var it Item
	var class, action, status string
	var attrs []byte
	if err := row.Scan(&it.Seq, &class, &it.Application, &it.Account, &it.EmployeeID, &it.Entitlement,
		&action, &it.Reason, &it.Rules, &it.PolicyVersion, &attrs, &status, &it.Outcome); err != nil {
		return Item{}, err
	}
	it.Class, it.Action, it.Status = Class(class), Action(action), Status(status)
	if len(it.Rules) == 0 {
		it.Rules = nil
	}
	if len(attrs) > 0 {
		it.Attributes = &connectors.Account{}
		if err := json.Unmarshal(attrs, it.Attributes); err != nil {
			return Item{}, fmt.Errorf("attributes of item %d: %w", it.Seq, err)
		}
	}
	return it, nil
}

// Summarize counts a run's findings in one application and picks the
// first perClass items of each class (without their attributes: samples
// travel into the workflow history).
func (s *Store) Summarize(ctx context.Context, runID, app string, perClass int) (Summary, error) {
	sum := Summary{Counts: map[Class]int{}}
	rows, err := s.pool.Query(ctx, `SELECT class, count(*), count(*) FILTER (WHERE action <> '')
		FROM reconcile_items WHERE run_id = $1 AND application = $2 GROUP BY class`, runID, app)
	if err != nil {
		return Summary{}, fmt.Errorf("reconcile: count findings in %s: %w", app, err)
	}
	var class string
	var n, fixes int
	if _, err := pgx.ForEachRow(rows, []any{&class, &n, &fixes}, func() error {
		sum.Counts[Class(class)] = n
		sum.Fixes += fixes
		return nil
	}); err != nil {
		return Summary{}, fmt.Errorf("reconcile: count findings in %s: %w", app, err)
	}
	rows, err = s.pool.Query(ctx, `SELECT `+itemColumns+` FROM (
			SELECT *, row_number() OVER (PARTITION BY class ORDER BY seq) AS n
			FROM reconcile_items WHERE run_id = $1 AND application = $2) x
		WHERE n <= $3 ORDER BY seq`, runID, app, perClass)
	if err != nil {
		return Summary{}, fmt.Errorf("reconcile: sample findings in %s: %w", app, err)
	}
	if sum.Samples, err = pgx.CollectRows(rows, scanItem); err != nil {
		return Summary{}, fmt.Errorf("reconcile: sample findings in %s: %w", app, err)
	}
	for i := range sum.Samples {
		sum.Samples[i].Attributes = nil
	}
	return sum, nil
}

// ItemQuery selects items of a run.
type ItemQuery struct {
	// Apps restricts to these applications; empty means all.
	Apps []string
	// Pending selects only items fix mode still has to change (an action,
	// status found).
	Pending bool
	// AfterSeq continues after this item.
	AfterSeq int64
	// Limit caps the page; 0 means no limit.
	Limit int
}

// Items returns a run's items in the order found.
func (s *Store) Items(ctx context.Context, runID string, q ItemQuery) ([]Item, error) {
	apps := q.Apps
	if apps == nil {
		apps = []string{}
	}
	var limit *int
	if q.Limit > 0 {
		limit = &q.Limit
	}
	rows, err := s.pool.Query(ctx, `SELECT `+itemColumns+` FROM reconcile_items
		WHERE run_id = $1 AND seq > $2 AND (cardinality($3::text[]) = 0 OR application = ANY($3))
		  AND (NOT $4 OR (action <> '' AND status = 'found'))
		ORDER BY seq LIMIT $5`, runID, q.AfterSeq, apps, q.Pending, limit)
	if err != nil {
		return nil, fmt.Errorf("reconcile: items of run %s: %w", runID, err)
	}
	items, err := pgx.CollectRows(rows, scanItem)
	if err != nil {
		return nil, fmt.Errorf("reconcile: items of run %s: %w", runID, err)
	}
	return items, nil
}

// SetOutcomes records how fixes went.
func (s *Store) SetOutcomes(ctx context.Context, runID string, outs []Outcome) error {
	if len(outs) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, o := range outs {
		switch o.Status {
		case StatusFixed, StatusFailed, StatusSkipped:
		default:
			return fmt.Errorf("reconcile: outcome of item %d: status %q is not fixed, failed or skipped", o.Seq, o.Status)
		}
		b.Queue(`UPDATE reconcile_items SET status = $3, outcome = $4, settled_at = now()
			WHERE run_id = $1 AND seq = $2`, runID, o.Seq, string(o.Status), o.Note)
	}
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("reconcile: record %d outcomes of run %s: %w", len(outs), runID, err)
	}
	return nil
}

func scanPerson(row pgx.CollectableRow) (hr.Person, error) {
	var id string
	var record []byte
	if err := row.Scan(&id, &record); err != nil {
		return hr.Person{}, err
	}
	var p hr.Person
	if err := json.Unmarshal(record, &p); err != nil {
		return hr.Person{}, fmt.Errorf("roster record of %s: %w", id, err)
	}
	return p, nil
}
