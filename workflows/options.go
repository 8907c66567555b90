package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/provisio-dev/provisio/connectors"
)

// nonRetryable are the connector error kinds for which a retry cannot help.
var nonRetryable = []string{
	string(connectors.KindInvalid), string(connectors.KindConflict),
	string(connectors.KindPermission), string(connectors.KindNotFound),
}

// withOptions sets the activity options of one step: every retry policy of
// the workflows is below, side by side, built from these few numbers.
func withOptions(ctx workflow.Context, summary string, timeout, heartbeat, maxInterval time.Duration, attempts int32, nonRetryable []string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    heartbeat,
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        maxInterval,
			MaximumAttempts:        attempts,
			NonRetryableErrorTypes: nonRetryable,
		},
	})
}

// invalidOnly stops retrying only input that can never succeed.
var invalidOnly = []string{string(connectors.KindInvalid)}

// provisionOptions govern steps that grant access: a bounded number of
// retries, after which the step has failed for good and the workflow
// compensates rather than leave a half-provisioned person.
func provisionOptions(ctx workflow.Context, summary string) workflow.Context {
	return withOptions(ctx, summary, 30*time.Second, 0, 30*time.Second, 8, nonRetryable)
}

// undoOptions govern compensation and other steps that take access away:
// they never give up (zero attempts is unlimited), because giving up would
// leave an orphan account. An account already gone is success (idempotent
// delete), so what retries is a real outage or a permission problem an
// operator can fix.
func undoOptions(ctx workflow.Context, summary string) workflow.Context {
	return withOptions(ctx, summary, 30*time.Second, 0, 5*time.Minute, 0, invalidOnly)
}

// deprovisionOptions govern one try of a leaver's step: a few quick
// retries, then the workflow's own loop (persist) takes over with longer
// pauses, so an outage is visible as NeedsAttention rather than hidden in an
// activity's attempt count. NotFound, Conflict and PermissionDenied are not
// retried here: the step decides what NotFound means, and the others need an
// operator, whom persist alerts at once.
func deprovisionOptions(ctx workflow.Context, summary string) workflow.Context {
	return withOptions(ctx, summary, 45*time.Second, 0, 15*time.Second, 5, nonRetryable)
}

// awaitOptions govern AwaitWorkflowClosed, which blocks for up to
// awaitOnboardingPoll; its heartbeats let a worker crash be noticed in
// seconds rather than minutes.
func awaitOptions(ctx workflow.Context, summary string) workflow.Context {
	return withOptions(ctx, summary, awaitOnboardingPoll+30*time.Second, 20*time.Second, 15*time.Second, 5, invalidOnly)
}

// RevocationTaskQueue is the queue offboardings run on, beside taskQueue:
// served by a worker of its own, so revocation never waits for the slots
// or connections a mass hire holds.
func RevocationTaskQueue(taskQueue string) string { return taskQueue + "-revocation" }
