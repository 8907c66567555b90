package policy

import (
	"fmt"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
)

// SchemaVersion is the only policy file format this package reads.
const SchemaVersion = 1

// Built-in defaults, used when the file's defaults section leaves them out.
const (
	DefaultEscalateAfter = 3 * Day
	DefaultExpireAfter   = 7 * Day
	DefaultMaxTemporary  = 90 * Day
	DefaultRemindBefore  = 7 * Day
	DefaultRetention     = 30 * Day
)

// Day is 24 hours; policy files write durations in days ("3d").
const Day = 24 * time.Hour

// Ranges durations must fall in. They catch typos such as "7h" meant as
// "7d" for an approval that would otherwise expire overnight.
const (
	MinApprovalWait  = time.Hour
	MaxApprovalWait  = 30 * Day
	MinTemporary     = time.Hour
	MaxTemporary     = 365 * Day
	MaxRetention     = 3650 * Day
	MaxPolicyBytes   = 1 << 20
	maxExpressionLen = 4096
)

// Policy is a loaded, validated policy file. It is immutable once returned
// by Parse, so one value may be shared by any number of goroutines.
type Policy struct {
	// Version is the hex SHA-256 of the file content: plans record it so an
	// auditor can find the exact file that decided them.
	Version string
	// Source is the file name the policy was read from.
	Source string
	// FallbackApprover approves steps nobody else can (see the package doc).
	FallbackApprover string
	// Applications are sorted by name.
	Applications []*Application
	// Roles are sorted by name.
	Roles []*Role
	// Rules are in file order; plans do not depend on it.
	Rules []*Rule
	// SoD are the separation-of-duties sets, in file order.
	SoD []*SoDRule

	apps  map[string]*Application
	roles map[string]*Role
}

// Application is one target system the policy grants access in.
type Application struct {
	// Name is how rules, roles and plans refer to the application.
	Name string
	// Connector is the connector type that serves it (ldap, postgres, scim).
	Connector string
	// Owner is the employee ID that approves owner-approved entitlements.
	Owner string
	// Settings are the connector's non-secret settings. Keys ending in _env
	// name the environment variable that holds a secret, never the secret.
	Settings map[string]string
	// Retention is how long a leaver's disabled account is kept before it
	// is deleted.
	Retention time.Duration
	// DisableFallback is what a leaver does when the application accepts a
	// disable but a read-back shows the account still enabled:
	// FallbackFlag (the default) or FallbackDelete.
	DisableFallback string
	// Entitlements are sorted by name.
	Entitlements []*Entitlement
	// Ignore are username patterns (path.Match syntax, e.g. "svc-*") of
	// accounts no person owns, such as service accounts: reconciliation
	// reports them as unmanaged and never changes them. In file order.
	Ignore []string
	// Line is where the application is declared in the file.
	Line int

	ents map[string]*Entitlement
}

// Entitlement returns the named entitlement of the application, or nil.
func (a *Application) Entitlement(name string) *Entitlement { return a.ents[name] }

// Risk grades an entitlement for reviewers and access reviews.
type Risk string

// Risk levels, lowest first.
const (
	RiskLow      Risk = "low"
	RiskMedium   Risk = "medium"
	RiskHigh     Risk = "high"
	RiskCritical Risk = "critical"
)

// Entitlement is one group or role in an application.
type Entitlement struct {
	// Application is the name of the application it belongs to.
	Application string
	// Name is the group or role name in the target system.
	Name        string
	Description string
	Risk        Risk
	// Approval is what granting it needs (also when it comes from a rule).
	Approval Approval
	// Temporary says how long a time-boxed grant may last and whether the
	// entitlement may only be held time-boxed.
	Temporary Temporary
	// Line is where the entitlement is declared in the file.
	Line int
}

// Ref returns the entitlement's reference.
func (e *Entitlement) Ref() Ref { return Ref{Application: e.Application, Entitlement: e.Name} }

// Requirement is who must approve, in order.
type Requirement string

// Approval requirements a role or entitlement may ask for.
const (
	RequireNone           Requirement = "none"
	RequireManager        Requirement = "manager"
	RequireOwner          Requirement = "owner"
	RequireManagerThenOwn Requirement = "manager_then_owner"
)

// kinds lists the approver kinds a requirement expands to, in order.
func (r Requirement) kinds() []ApproverKind {
	switch r {
	case RequireManager:
		return []ApproverKind{ApproverManager}
	case RequireOwner:
		return []ApproverKind{ApproverOwner}
	case RequireManagerThenOwn:
		return []ApproverKind{ApproverManager, ApproverOwner}
	}
	return nil
}

// Approval is the approval a role or entitlement needs.
type Approval struct {
	Require Requirement
	// EscalateAfter is how long an approver has before the request goes to
	// the approver's manager as well.
	EscalateAfter time.Duration
	// ExpireAfter is how long the request waits in total before it counts
	// as rejected.
	ExpireAfter time.Duration
}

// Temporary are the rules for time-boxed grants of an entitlement.
type Temporary struct {
	// Only means the entitlement is never held permanently: every grant,
	// including one from a rule, ends after at most MaxDuration.
	Only bool
	// MaxDuration bounds one grant.
	MaxDuration time.Duration
	// RemindBefore is when the holder is reminded that the grant ends.
	RemindBefore time.Duration
	// ExtensionNeedsApproval means extending a grant goes through the
	// approvals again.
	ExtensionNeedsApproval bool
}

// Role is a named bundle of entitlements, possibly across applications.
type Role struct {
	Name        string
	Description string
	// Includes are roles whose entitlements this role also grants.
	Includes []string
	// Entitlements are granted directly by the role.
	Entitlements []Ref
	// Approval applies to the entitlements granted through the role, on top
	// of each entitlement's own approval, unless the person also qualifies
	// for the entitlement through a path that needs less (see Policy.Plan).
	Approval Approval
	Line     int
}

// Rule is a birthright rule: everyone its condition matches gets its roles
// and entitlements.
type Rule struct {
	Name        string
	Description string
	// When is the CEL condition, as written in the file.
	When         string
	Roles        []string
	Entitlements []Ref
	Line         int

	prg cel.Program
}

// SoDAction is what happens when a separation-of-duties set is violated.
type SoDAction string

// Separation-of-duties actions.
const (
	// SoDBlock refuses the combination outright.
	SoDBlock SoDAction = "block"
	// SoDRequireApproval allows it once the named approver agrees.
	SoDRequireApproval SoDAction = "require_approval"
)

// SoDRule is a set of entitlements no person may hold two of at once.
type SoDRule struct {
	Name        string
	Description string
	// Entitlements are sorted; holding any two of them is a conflict.
	Entitlements []Ref
	Action       SoDAction
	// Approver approves a require_approval conflict.
	Approver string
	// Approval carries the approver's waits for require_approval.
	Approval Approval
	Line     int
}

// Ref names one entitlement of one application.
type Ref struct {
	Application string `json:"application"`
	Entitlement string `json:"entitlement"`
}

// String is the form policy files use: "application/entitlement".
func (r Ref) String() string { return r.Application + "/" + r.Entitlement }

// ParseRef reads "application/entitlement".
func ParseRef(s string) (Ref, error) {
	app, ent, ok := strings.Cut(s, "/")
	if !ok || app == "" || ent == "" || strings.Contains(ent, "/") {
		return Ref{}, fmt.Errorf("want application/entitlement, got %q", s)
	}
	return Ref{Application: app, Entitlement: ent}, nil
}

func compareRefs(a, b Ref) int {
	if c := strings.Compare(a.Application, b.Application); c != 0 {
		return c
	}
	return strings.Compare(a.Entitlement, b.Entitlement)
}

// Application returns the named application, or nil.
func (p *Policy) Application(name string) *Application { return p.apps[name] }

// Entitlement returns the referenced entitlement, or nil.
func (p *Policy) Entitlement(r Ref) *Entitlement {
	if a := p.apps[r.Application]; a != nil {
		return a.ents[r.Entitlement]
	}
	return nil
}

// Role returns the named role, or nil.
func (p *Policy) Role(name string) *Role { return p.roles[name] }

// What a leaver does when an application ignores a disable
// (Application.DisableFallback).
const (
	// FallbackFlag keeps retrying the disable with growing pauses while the
	// run carries NeedsAttention, so an operator looks.
	FallbackFlag = "flag"
	// FallbackDelete deletes the account at once instead, giving up its
	// retention: for applications where an enabled account of a leaver is
	// worse than a lost one.
	FallbackDelete = "delete"
)

var disableFallbacks = []string{FallbackFlag, FallbackDelete}

// DisableFallback is app's Application.DisableFallback; unknown
// applications get FallbackFlag.
func (p *Policy) DisableFallback(app string) string {
	if a := p.apps[app]; a != nil && a.DisableFallback != "" {
		return a.DisableFallback
	}
	return FallbackFlag
}

// Retention is how long a leaver's disabled account in app is kept before
// deletion; unknown applications get the built-in default.
func (p *Policy) Retention(app string) time.Duration {
	if a := p.apps[app]; a != nil {
		return a.Retention
	}
	return DefaultRetention
}
