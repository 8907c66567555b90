package workflows

import (
	"go.temporal.io/sdk/temporal"

	"github.com/provisio-dev/provisio/activities"
)

// Typed search attributes, registered on the namespace by the launcher
// (deployments/temporal/search_attributes.txt must list the same names).
// They hold employee IDs and states only, never personal data, because
// search attributes are not encrypted.
var (
	// AttrEmployeeID is the HR key of the person a run is about.
	AttrEmployeeID = temporal.NewSearchAttributeKeyKeyword("EmployeeId")
	// AttrLifecycleEvent is joiner, mover, leaver or temporary-access.
	AttrLifecycleEvent = temporal.NewSearchAttributeKeyKeyword("LifecycleEvent")
	// AttrLifecycleState is the run's current step (see the State constants).
	AttrLifecycleState = temporal.NewSearchAttributeKeyKeyword("LifecycleState")
	// AttrWaitingApprovers lists the employee IDs a run waits for.
	AttrWaitingApprovers = temporal.NewSearchAttributeKeyKeywordList("WaitingApprovers")
	// AttrApplicationsTouched lists the applications a run changed.
	AttrApplicationsTouched = temporal.NewSearchAttributeKeyKeywordList("ApplicationsTouched")
	// AttrNeedsAttention marks a run an operator should look at.
	AttrNeedsAttention = temporal.NewSearchAttributeKeyBool("NeedsAttention")
)

// SearchAttributes lists every key this package declares, for the check
// against the launcher's registration file.
func SearchAttributes() []temporal.SearchAttributeKey {
	return []temporal.SearchAttributeKey{
		AttrEmployeeID, AttrLifecycleEvent, AttrLifecycleState,
		AttrWaitingApprovers, AttrApplicationsTouched, AttrNeedsAttention,
	}
}

// Lifecycle events, the values of AttrLifecycleEvent.
const (
	EventJoiner = "joiner"
)

// Lifecycle states, the values of AttrLifecycleState.
const (
	StatePlanning     = "planning"
	StateProvisioning = "provisioning"
	StateWaitingStart = "waiting-start-date"
	StateEnabling     = "enabling"
	StateCompensating = "compensating"
	StateCompleted    = "completed"
	StateFailed       = "failed"
	StateCancelled    = "cancelled"
)

// The leaver's event and states (see Offboarding).
const (
	// EventLeaver marks an offboarding run.
	EventLeaver = "leaver"
	// StateScheduled waits for the end of the last day.
	StateScheduled = "scheduled"
	// StateRetracted ended a scheduled offboarding before it touched
	// anything (HR withdrew it).
	StateRetracted = "retracted"
	// StateDisabling disables every account and ends sessions.
	StateDisabling = "disabling"
	// StateRevoking removes every entitlement of the disabled accounts.
	StateRevoking = "revoking"
	// StateRetention keeps the disabled accounts until their deletion date.
	StateRetention = "retention"
	// StateDeleting deletes an account whose retention has ended.
	StateDeleting = "deleting"
)

// The mover's event and states (see Mover). It also passes through
// StateProvisioning, StateRevoking, StateWaitingApproval and the final
// states.
const (
	// EventMover marks a role change.
	EventMover = activities.EventMover
	// StateWaitingTurn waits for the person's onboarding, or an earlier
	// role change, to finish first.
	StateWaitingTurn = "waiting-turn"
)

// The temporary-access event and states (see TemporaryAccess). It also
// uses StatePlanning, StateWaitingApproval, StateProvisioning,
// StateRevoking, StateFailed and StateCancelled.
const (
	// EventTemporaryAccess marks a temporary-access run.
	EventTemporaryAccess = activities.EventTemporaryAccess
	// StateActive holds the grant until it expires.
	StateActive = "active"
	// StateReminderSent holds the grant after the holder was reminded that
	// it ends soon.
	StateReminderSent = "reminder-sent"
	// StateExpired ended the grant at its expiry.
	StateExpired = "expired"
	// StateRevoked ended the grant early on request (or withdrew a request
	// before it was granted).
	StateRevoked = "revoked"
	// StateRejected ended a request its approvers did not approve: nothing
	// was granted.
	StateRejected = "rejected"
)

// The reconciliation's event and states (see Reconcile). It also passes
// through StateWaitingApproval (its fixes exceed the change cap) and ends
// StateCompleted, StateRejected (the fixes were refused), StateExpired
// (nobody decided in time) or StateFailed.
const (
	// EventReconciliation marks a reconciliation run.
	EventReconciliation = "reconciliation"
	// StateScanning compares the applications with HR and policy.
	StateScanning = "scanning"
	// StateFixing makes the fixes.
	StateFixing = "fixing"
)
