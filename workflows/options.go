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

// provisionOptions govern steps that grant access: a bounded number of
// retries, after which the step has failed for good and the workflow
// compensates rather than leave a half-provisioned person.
func provisionOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        8,
			NonRetryableErrorTypes: nonRetryable,
		},
	})
}

// undoOptions govern compensation and other steps that take access away:
// they never give up, because giving up would leave an orphan account.
func undoOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    5 * time.Minute,
			// Zero attempts means unlimited: an account that is already gone
			// is success (idempotent delete), so what retries is a real outage
			// or a permission problem an operator can fix. Only input that can
			// never succeed stops.
			MaximumAttempts:        0,
			NonRetryableErrorTypes: []string{string(connectors.KindInvalid)},
		},
	})
}
