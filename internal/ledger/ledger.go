// Package ledger is the durable access ledger: an append-only PostgreSQL
// table of every change the system made in an application, with why it was
// made. It outlives the Temporal history retention period and answers the
// auditor's questions: who holds what now, why, and since when.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Action is what a change did in an application.
type Action string

// The actions the ledger records.
const (
	ActionCreated  Action = "created"
	ActionGranted  Action = "granted"
	ActionRevoked  Action = "revoked"
	ActionDisabled Action = "disabled"
	ActionEnabled  Action = "enabled"
	ActionDeleted  Action = "deleted"
)

// Valid reports whether a is one of the actions the ledger records.
func (a Action) Valid() bool {
	switch a {
	case ActionCreated, ActionGranted, ActionRevoked, ActionDisabled, ActionEnabled, ActionDeleted:
		return true
	}
	return false
}

// OnEntitlement reports whether a is about an entitlement (granted,
// revoked) rather than an account.
func (a Action) OnEntitlement() bool { return a == ActionGranted || a == ActionRevoked }

// Events name the process that made a change (Justification.Event).
const (
	EventJoiner         = "joiner"
	EventMover          = "mover"
	EventLeaver         = "leaver"
	EventTemporary      = "temporary"
	EventCompensation   = "compensation"
	EventReconciliation = "reconciliation"
)

// How a revocation was verified (Entry.VerifiedBy).
const (
	// VerifiedReadBack: the application, read back after the change,
	// showed it in effect.
	VerifiedReadBack = "read-back"
	// VerifiedFallbackDelete: the application ignored a disable, so the
	// account was deleted instead (the policy's disable_fallback: delete),
	// and a read-back showed it gone.
	VerifiedFallbackDelete = "fallback-delete"
)

// validVerifiedBy reports whether v is one of the Verified constants.
func validVerifiedBy(v string) bool { return v == VerifiedReadBack || v == VerifiedFallbackDelete }

// IsRevocation reports whether a takes access away (disabled, revoked,
// deleted): the actions that are verified.
func (a Action) IsRevocation() bool {
	return a == ActionDisabled || a == ActionRevoked || a == ActionDeleted
}

// validEvent reports whether ev is one of the Event constants.
func validEvent(ev string) bool {
	switch ev {
	case EventJoiner, EventMover, EventLeaver, EventTemporary, EventCompensation, EventReconciliation:
		return true
	}
	return false
}

// Justification says why a change was made: the process, the policy rules
// behind a grant, or the approval that allowed it.
type Justification struct {
	// Event is the process that made the change (EventJoiner, ...).
	Event string `json:"event"`
	// Rules are the policy rules and roles that justify a grant.
	Rules []string `json:"rules,omitempty"`
	// ApprovalID is the approval request that allowed the grant.
	ApprovalID string `json:"approvalId,omitempty"`
	// Approver is the employee ID of whoever approved it.
	Approver string `json:"approver,omitempty"`
	// ApprovedAt is when the approval was given.
	ApprovedAt time.Time `json:"approvedAt,omitzero"`
	// Note is free text: a termination reason, a temporary-access
	// justification, the failure a compensation undid.
	Note string `json:"note,omitempty"`
}

// Entry is one ledger row. Seq and At are set by the database.
type Entry struct {
	Seq         int64     `json:"seq"`
	At          time.Time `json:"at"`
	EmployeeID  string    `json:"employeeId"`
	Application string    `json:"application"`
	Account     string    `json:"account"`
	// Entitlement is empty for account actions (created, disabled, ...).
	Entitlement string `json:"entitlement,omitempty"`
	Action      Action `json:"action"`
	// Disabled is set on a created entry when the account was created
	// disabled (a future start date); the account is then held disabled
	// until an enabled entry.
	Disabled bool `json:"disabled,omitempty"`
	Justification
	PolicyVersion string `json:"policyVersion,omitempty"`
	// RequestedAt is when the workflow first asked for a revocation
	// (disabled, revoked, deleted). VerifiedAt is when a read-back of the
	// application showed it in effect and VerifiedBy how (VerifiedReadBack
	// or VerifiedFallbackDelete). All three are zero on other actions and
	// on revocations recorded before verification existed.
	RequestedAt time.Time `json:"requestedAt,omitzero"`
	VerifiedAt  time.Time `json:"verifiedAt,omitzero"`
	VerifiedBy  string    `json:"verifiedBy,omitempty"`
	WorkflowID  string    `json:"workflowId"`
	RunID       string    `json:"runId"`
	// ActivityID with WorkflowID and RunID is the idempotency key: a retried
	// activity never writes twice.
	ActivityID string `json:"activityId"`
}

// Validate checks that e can be recorded, naming the first field that is
// missing or wrong. Record calls it; activities call it before they change
// anything, so a bad entry stops the change rather than leaving it
// unrecorded.
func (e Entry) Validate() error {
	required := []struct{ field, value string }{
		{"employee ID", e.EmployeeID},
		{"application", e.Application},
		{"account", e.Account},
		{"workflow ID", e.WorkflowID},
		{"run ID", e.RunID},
		{"activity ID", e.ActivityID},
	}
	for _, r := range required {
		if strings.TrimSpace(r.value) == "" {
			return fmt.Errorf("ledger entry: %s is empty", r.field)
		}
	}
	if !e.Action.Valid() {
		return fmt.Errorf("ledger entry: action %q is not one of created, granted, revoked, disabled, enabled, deleted", e.Action)
	}
	switch {
	case e.Action.OnEntitlement() && strings.TrimSpace(e.Entitlement) == "":
		return fmt.Errorf("ledger entry: entitlement is empty for action %q", e.Action)
	case !e.Action.OnEntitlement() && e.Entitlement != "":
		return fmt.Errorf("ledger entry: entitlement %q given for account action %q", e.Entitlement, e.Action)
	case e.Disabled && e.Action != ActionCreated:
		return fmt.Errorf("ledger entry: disabled is set for action %q (only created accounts are created disabled)", e.Action)
	case !validEvent(e.Event):
		return fmt.Errorf("ledger entry: event %q is not one of joiner, mover, leaver, temporary, compensation, reconciliation", e.Event)
	case e.VerifiedBy != "" && !validVerifiedBy(e.VerifiedBy):
		return fmt.Errorf("ledger entry: verified by %q is not one of %s, %s", e.VerifiedBy, VerifiedReadBack, VerifiedFallbackDelete)
	case (e.VerifiedBy == "") != e.VerifiedAt.IsZero():
		return errors.New("ledger entry: verified at and verified by go together")
	case (e.VerifiedBy != "" || !e.RequestedAt.IsZero()) && !e.Action.IsRevocation():
		return fmt.Errorf("ledger entry: requested or verified times given for action %q (only disabled, revoked and deleted are verified)", e.Action)
	case e.VerifiedBy == VerifiedFallbackDelete && e.Action != ActionDeleted:
		return fmt.Errorf("ledger entry: %s given for action %q", VerifiedFallbackDelete, e.Action)
	}
	return nil
}

// Holding is what a person holds now in one application: the account
// (Entitlement empty) or one entitlement, with the entry that gave it.
type Holding struct {
	EmployeeID  string `json:"employeeId"`
	Application string `json:"application"`
	Account     string `json:"account"`
	Entitlement string `json:"entitlement,omitempty"`
	// State is "enabled" or "disabled" for an account, "granted" for an
	// entitlement.
	State string    `json:"state"`
	Since time.Time `json:"since"`
	Justification
	PolicyVersion string `json:"policyVersion,omitempty"`
	WorkflowID    string `json:"workflowId"`
	RunID         string `json:"runId"`
}

// The states of a Holding.
const (
	StateEnabled  = "enabled"
	StateDisabled = "disabled"
	StateGranted  = "granted"
)

// Store reads and appends the ledger.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store on pool; the migrations (store.Migrate) create its
// table.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// columns lists the entry columns in the order scanEntry reads them.
const columns = `seq, at, employee_id, application, account, entitlement, action, disabled,
	event, rules, approval_id, approver, approved_at, note, policy_version,
	requested_at, verified_at, verified_by, workflow_id, run_id, activity_id`

// Record appends e unless an entry with the same workflow, run and activity
// ID exists. It reports whether it wrote.
func (s *Store) Record(ctx context.Context, e Entry) (bool, error) {
	if err := e.Validate(); err != nil {
		return false, err
	}
	rules := e.Rules
	if rules == nil {
		rules = []string{}
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO access_ledger (
		employee_id, application, account, entitlement, action, disabled,
		event, rules, approval_id, approver, approved_at, note, policy_version,
		requested_at, verified_at, verified_by, workflow_id, run_id, activity_id)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
	ON CONFLICT (workflow_id, run_id, activity_id) DO NOTHING`,
		e.EmployeeID, e.Application, e.Account, e.Entitlement, string(e.Action), e.Disabled,
		e.Event, rules, e.ApprovalID, e.Approver, nullTime(e.ApprovedAt), e.Note, e.PolicyVersion,
		nullTime(e.RequestedAt), nullTime(e.VerifiedAt), e.VerifiedBy, e.WorkflowID, e.RunID, e.ActivityID)
	if err != nil {
		return false, fmt.Errorf("record %s %s/%s for %s: %w", e.Action, e.Application, e.Account, e.EmployeeID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Holdings folds the person's trail into what they hold now, sorted by
// application, account and entitlement (each account before its
// entitlements).
func (s *Store) Holdings(ctx context.Context, employeeID string) ([]Holding, error) {
	if strings.TrimSpace(employeeID) == "" {
		return nil, errors.New("holdings: employee ID is empty")
	}
	entries, err := s.query(ctx, `SELECT `+columns+` FROM access_ledger
		WHERE employee_id = $1 ORDER BY seq`, employeeID)
	if err != nil {
		return nil, fmt.Errorf("holdings of %s: %w", employeeID, err)
	}
	return Fold(entries), nil
}

// Holders lists who holds an entitlement of an application now, sorted by
// employee ID.
func (s *Store) Holders(ctx context.Context, application, entitlement string) ([]Holding, error) {
	switch {
	case strings.TrimSpace(application) == "":
		return nil, errors.New("holders: application is empty")
	case strings.TrimSpace(entitlement) == "":
		return nil, errors.New("holders: entitlement is empty")
	}
	// Only people ever granted it can hold it; their entries in that one
	// application are enough to fold, since nothing in another application
	// revokes it.
	entries, err := s.query(ctx, `SELECT `+columns+` FROM access_ledger
		WHERE application = $1 AND employee_id IN (
			SELECT employee_id FROM access_ledger
			WHERE application = $1 AND entitlement = $2 AND action = 'granted')
		ORDER BY employee_id, seq`, application, entitlement)
	if err != nil {
		return nil, fmt.Errorf("holders of %s/%s: %w", application, entitlement, err)
	}
	var out []Holding
	for start := 0; start < len(entries); {
		end := start
		for end < len(entries) && entries[end].EmployeeID == entries[start].EmployeeID {
			end++
		}
		for _, h := range Fold(entries[start:end]) {
			if h.Entitlement == entitlement {
				out = append(out, h)
			}
		}
		start = end
	}
	return out, nil
}

// Trail is every entry of a person at or after since, oldest first. A zero
// since means the whole trail.
func (s *Store) Trail(ctx context.Context, employeeID string, since time.Time) ([]Entry, error) {
	if strings.TrimSpace(employeeID) == "" {
		return nil, errors.New("trail: employee ID is empty")
	}
	entries, err := s.query(ctx, `SELECT `+columns+` FROM access_ledger
		WHERE employee_id = $1 AND at >= $2 ORDER BY seq`, employeeID, since)
	if err != nil {
		return nil, fmt.Errorf("trail of %s: %w", employeeID, err)
	}
	return entries, nil
}

func (s *Store) query(ctx context.Context, sql string, args ...any) ([]Entry, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Entry, error) {
		var e Entry
		var action string
		var approvedAt, requestedAt, verifiedAt *time.Time
		err := row.Scan(&e.Seq, &e.At, &e.EmployeeID, &e.Application, &e.Account, &e.Entitlement,
			&action, &e.Disabled, &e.Event, &e.Rules, &e.ApprovalID, &e.Approver, &approvedAt,
			&e.Note, &e.PolicyVersion, &requestedAt, &verifiedAt, &e.VerifiedBy,
			&e.WorkflowID, &e.RunID, &e.ActivityID)
		e.Action = Action(action)
		e.ApprovedAt, e.RequestedAt, e.VerifiedAt = timeOrZero(approvedAt), timeOrZero(requestedAt), timeOrZero(verifiedAt)
		if len(e.Rules) == 0 {
			e.Rules = nil
		}
		return e, err
	})
}

// nullTime stores the zero time as NULL: "not known" rather than year 1.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// timeOrZero reads a NULL time back as the zero time.
func timeOrZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// Fold replays one person's entries, oldest first, into what they hold
// now: each account with its last state (created or enabled is enabled,
// disabled is disabled; a deleted account is gone with its entitlements),
// and each entitlement granted and not revoked since, nor dropped by a
// later deletion of its account. An account holding carries the entry that
// set its current state; an entitlement the grant that gave it. The result
// is sorted by application, account and entitlement.
func Fold(entries []Entry) []Holding {
	type key struct{ app, account, ent string }
	held := map[key]Holding{}
	for _, e := range entries {
		k := key{e.Application, e.Account, e.Entitlement}
		switch e.Action {
		case ActionCreated, ActionEnabled:
			state := StateEnabled
			if e.Disabled {
				state = StateDisabled
			}
			held[k] = holding(e, state)
		case ActionDisabled:
			held[k] = holding(e, StateDisabled)
		case ActionDeleted:
			for h := range held {
				if h.app == e.Application && h.account == e.Account {
					delete(held, h)
				}
			}
		case ActionGranted:
			// A second grant of a held entitlement changes nothing: it is
			// held since the first.
			if _, ok := held[k]; !ok {
				held[k] = holding(e, StateGranted)
			}
		case ActionRevoked:
			delete(held, k)
		}
	}
	out := make([]Holding, 0, len(held))
	for _, h := range held {
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b Holding) int {
		return cmpStrings(a.Application, b.Application, a.Account, b.Account, a.Entitlement, b.Entitlement)
	})
	return out
}

func holding(e Entry, state string) Holding {
	return Holding{
		EmployeeID: e.EmployeeID, Application: e.Application, Account: e.Account,
		Entitlement: e.Entitlement, State: state, Since: e.At, Justification: e.Justification,
		PolicyVersion: e.PolicyVersion, WorkflowID: e.WorkflowID, RunID: e.RunID,
	}
}

// cmpStrings compares pairs (a1, b1), (a2, b2), ... in order.
func cmpStrings(pairs ...string) int {
	for i := 0; i+1 < len(pairs); i += 2 {
		if c := strings.Compare(pairs[i], pairs[i+1]); c != 0 {
			return c
		}
	}
	return 0
}

// StateDeleted is the state of a Removal whose account was deleted; a
// Holding never has it, since a deleted account is no longer held.
const StateDeleted = "deleted"

// Removal is how one of a person's accounts stands after access removal,
// as the ledger tells it: what `starter status` shows for a leaver. Its
// JSON fields are stable.
type Removal struct {
	Application string `json:"application"`
	Account     string `json:"account"`
	// State is StateEnabled, StateDisabled or StateDeleted.
	State string `json:"state"`
	// Since is when the account reached State: the time of the entry that
	// set it.
	Since time.Time `json:"since"`
	// Entitlements are the entitlements the account still holds, sorted;
	// empty (never null) once none are left or the account is deleted.
	Entitlements []string `json:"entitlements"`
	// Removed is set when the account is deleted, or disabled and holding
	// no entitlement: nothing of it grants access any more.
	Removed bool `json:"removed"`
	// Verified is set when Removed and the entry that set State (the
	// disable or the delete) carries a verification: the application, read
	// back, showed the change in effect. Revocations of entitlements do
	// not count: once the account is removed they grant nothing.
	Verified bool `json:"verified"`
	// RequestedAt, VerifiedAt and VerifiedBy are those of the entry that
	// set State (see Entry): zero when it is not a revocation or was
	// recorded before verification existed.
	RequestedAt time.Time `json:"requestedAt,omitzero"`
	VerifiedAt  time.Time `json:"verifiedAt,omitzero"`
	VerifiedBy  string    `json:"verifiedBy,omitempty"`
	// WorkflowID and RunID are the run that set State.
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
}

// Gap says in a few words why r is not verified, or "" when it is. Since
// activities record a revocation only once a read-back confirmed it, a
// change asked for but never confirmed leaves the account in its earlier
// state: an enabled account is a disable not confirmed, an entitlement
// still held a revoke not confirmed. A disable or delete recorded without
// a verification predates it (or was written by hand).
func (r Removal) Gap() string {
	switch {
	case r.Verified:
		return ""
	case r.State == StateEnabled:
		return "disable not confirmed"
	case !r.Removed:
		return "revoke of " + strings.Join(r.Entitlements, ", ") + " not confirmed"
	}
	return r.State + " without read-back"
}

// Removals replays one person's entries, oldest first, into how each of
// their accounts stands after access removal (see Removal), sorted by
// application and account. Every account the entries name is there, even
// one deleted long ago: an account known only from grants counts as
// enabled, since nothing shows it was ever disabled.
func Removals(entries []Entry) []Removal {
	type key struct{ app, account string }
	type account struct {
		state string
		// setter is the entry that set state.
		setter Entry
		ents   map[string]bool
	}
	accounts := map[key]*account{}
	for _, e := range entries {
		k := key{e.Application, e.Account}
		a := accounts[k]
		if a == nil {
			a = &account{state: StateEnabled, setter: e, ents: map[string]bool{}}
			accounts[k] = a
		}
		switch e.Action {
		case ActionCreated, ActionEnabled:
			a.state, a.setter = StateEnabled, e
			if e.Disabled {
				a.state = StateDisabled
			}
		case ActionDisabled:
			a.state, a.setter = StateDisabled, e
		case ActionDeleted:
			a.state, a.setter = StateDeleted, e
			clear(a.ents)
		case ActionGranted:
			a.ents[e.Entitlement] = true
		case ActionRevoked:
			delete(a.ents, e.Entitlement)
		}
	}
	out := make([]Removal, 0, len(accounts))
	for k, a := range accounts {
		r := Removal{
			Application: k.app, Account: k.account, State: a.state, Since: a.setter.At,
			Entitlements: make([]string, 0, len(a.ents)),
			WorkflowID:   a.setter.WorkflowID, RunID: a.setter.RunID,
		}
		for ent := range a.ents {
			r.Entitlements = append(r.Entitlements, ent)
		}
		slices.Sort(r.Entitlements)
		r.Removed = a.state == StateDeleted || (a.state == StateDisabled && len(a.ents) == 0)
		if a.setter.Action.IsRevocation() {
			r.RequestedAt, r.VerifiedAt, r.VerifiedBy = a.setter.RequestedAt, a.setter.VerifiedAt, a.setter.VerifiedBy
		}
		r.Verified = r.Removed && r.VerifiedBy != ""
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Removal) int {
		return cmpStrings(a.Application, b.Application, a.Account, b.Account)
	})
	return out
}
