package workflows

import "time"

// OnboardingID is the workflow ID of a person's onboarding. Built from the
// employee ID alone, so a repeated hire event finds the existing run instead
// of starting a second one, and no personal data appears in the ID.
func OnboardingID(employeeID string) string { return "onboarding-" + employeeID }

// TaskQueue is the default task queue; the worker and the CLI both take it
// from config, which defaults to this.
const TaskQueue = "provisioning"

// OffboardingID is the workflow ID of a person's offboarding, built like
// OnboardingID so a repeated termination finds the existing run.
func OffboardingID(employeeID string) string { return "offboarding-" + employeeID }

// MoverID is the workflow ID of one role change: the employee ID and
// MoverChangeKey of the new attributes, so the same HR change sent twice
// finds the existing run instead of starting a second one. It holds no
// personal data and no '/', so approval request IDs built on it parse back.
func MoverID(employeeID, changeKey string) string { return "mover-" + employeeID + "-" + changeKey }

// TemporaryAccessID is the workflow ID of one person's temporary grant of
// one entitlement: "access-<employeeID>-<application>-<entitlement>".
// Asking again while the grant runs finds the running one; once it ended,
// the same ID starts a new grant. Policy names contain no slash, so request
// IDs built on it (ApprovalRequestID) still parse.
func TemporaryAccessID(employeeID, application, entitlement string) string {
	return "access-" + employeeID + "-" + application + "-" + entitlement
}

// PersonEventsID is the workflow ID of a person's event sequencer
// (PersonEvents): one per employee, so every role change of the person
// reaches the same run and is applied in the order it arrived.
func PersonEventsID(employeeID string) string { return "person-" + employeeID }

// ReconcileID is the workflow ID of a reconciliation started on demand at
// the given time: "reconcile-20261125T143000Z". Of two starts in the same
// second the second is refused rather than run twice.
func ReconcileID(at time.Time) string {
	return "reconcile-" + at.UTC().Format("20060102T150405Z")
}

// ReconcileScheduleID is the ID of the Temporal Schedule that runs
// reconciliation periodically.
const ReconcileScheduleID = "reconcile-schedule"

// ReconcileScheduledID is the workflow ID the schedule gives its runs;
// Temporal appends each run's start time ("reconcile-scheduled-2026-...").
const ReconcileScheduledID = "reconcile-scheduled"
