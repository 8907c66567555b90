package reconcile

import (
	"fmt"

	"github.com/provisio-dev/provisio/connectors"
)

// Class is the kind of difference reconciliation found.
type Class string

// The classes, in the order reports list them.
const (
	// ClassOrphan is an enabled account whose owner is not active in HR:
	// the zombie. Fix mode disables it (never deletes it in the same pass).
	ClassOrphan Class = "orphan"
	// ClassMissing is access policy justifies but the application lacks:
	// an account, an entitlement, or an account left disabled. Fix mode
	// provisions it.
	ClassMissing Class = "missing"
	// ClassExcess is an entitlement held that neither policy nor an
	// approved or temporary grant justifies. Fix mode revokes it.
	ClassExcess Class = "excess"
	// ClassUnmanaged is an account no person owns (no employee ID, or
	// listed in the policy's ignore patterns) or an entitlement the policy
	// does not declare. It is reported and never changed.
	ClassUnmanaged Class = "unmanaged"
)

// Classes lists every class in report order. Code that must be
// deterministic (workflows) ranges over it rather than over a map.
var Classes = []Class{ClassOrphan, ClassMissing, ClassExcess, ClassUnmanaged}

// Valid reports whether c is one of the classes.
func (c Class) Valid() bool {
	switch c {
	case ClassOrphan, ClassMissing, ClassExcess, ClassUnmanaged:
		return true
	}
	return false
}

// Action is the change fix mode makes for an item.
type Action string

// The actions. An item with no action is only reported.
const (
	ActionNone    Action = ""
	ActionDisable Action = "disable"
	ActionEnable  Action = "enable"
	ActionCreate  Action = "create"
	ActionGrant   Action = "grant"
	ActionRevoke  Action = "revoke"
)

// Status is where an item stands.
type Status string

// The statuses. A report-only run leaves every item found.
const (
	StatusFound   Status = "found"
	StatusFixed   Status = "fixed"
	StatusFailed  Status = "failed"
	StatusSkipped Status = "skipped"
)

// Item is one difference found in one application.
type Item struct {
	// Seq orders the items of a run as they were found; fixes run in this
	// order, so an account is created before its entitlements are granted.
	Seq         int64  `json:"seq"`
	Class       Class  `json:"class"`
	Application string `json:"application"`
	// Account is the username in the application; empty for a missing
	// account of a person who has no username reserved yet.
	Account    string `json:"account,omitempty"`
	EmployeeID string `json:"employeeId,omitempty"`
	// Entitlement is empty when the item is about the account itself.
	Entitlement string `json:"entitlement,omitempty"`
	Action      Action `json:"action,omitempty"`
	// Reason says why the item is a difference, in words.
	Reason string `json:"reason"`
	// Rules are the policy rules and roles behind a missing entitlement.
	Rules         []string `json:"rules,omitempty"`
	PolicyVersion string   `json:"policyVersion,omitempty"`
	// Attributes are the names and e-mail of a person whose account fix
	// mode creates (or whose username it must reserve first); nil
	// otherwise.
	Attributes *connectors.Account `json:"attributes,omitempty"`
	Status     Status              `json:"status"`
	// Outcome says how a fix went: the error of a failed one, why one was
	// skipped.
	Outcome string `json:"outcome,omitempty"`
}

// String is a short form for logs and messages:
// "excess postgres/anna.schmidt/prod_read".
func (it Item) String() string {
	s := fmt.Sprintf("%s %s/%s", it.Class, it.Application, it.Account)
	if it.Entitlement != "" {
		s += "/" + it.Entitlement
	}
	return s
}

// Outcome is what happened to one item in fix mode.
type Outcome struct {
	Seq    int64  `json:"seq"`
	Status Status `json:"status"`
	Note   string `json:"note,omitempty"`
}

// Summary is what one application's scan found: counts by class, how many
// items fix mode would change, and the first items of each class.
type Summary struct {
	Counts map[Class]int `json:"counts"`
	Fixes  int           `json:"fixes"`
	// Samples are at most the requested number of items per class, in
	// the order found, without Attributes.
	Samples []Item `json:"samples,omitempty"`
}
