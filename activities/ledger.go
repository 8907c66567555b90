package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/ledger"
)

// Recorder appends changes to the access ledger; ledger.Store implements
// it. Record must be idempotent on the entry's workflow, run and activity
// ID: it is called again when an activity is retried.
type Recorder interface {
	Record(ctx context.Context, e ledger.Entry) (bool, error)
}

var _ Recorder = (*ledger.Store)(nil)

// Audit says whose access a change is and why it is made. The workflow
// fills it in every input that changes an application; the activity copies
// it into the ledger entry it records after the change.
type Audit struct {
	// EmployeeID is the person whose access changes.
	EmployeeID string `json:"employeeId"`
	// PolicyVersion is the policy that decided the change, if any.
	PolicyVersion string `json:"policyVersion,omitempty"`
	ledger.Justification
	// Retry is set when a workflow tries a step again with a new activity
	// after an earlier one failed for good (a leaver's retry loop): that
	// one may have made the change and failed to record it (the ledger
	// was down), so a call that finds nothing left to do still records,
	// as a retried attempt of one activity does.
	Retry bool `json:"retry,omitempty"`
}

// change is one change an activity is about to make, as the ledger will
// record it.
type change struct {
	entry ledger.Entry
	retry bool
}

// prepare builds and checks the ledger entry of a change before the change
// is made: a change that could not be recorded must not be made at all, so
// a missing ledger or an incomplete audit fails the activity as invalid
// input, with nothing done.
func (a *Activities) prepare(ctx context.Context, op string, au Audit, app, account, entitlement string, action ledger.Action) (change, error) {
	if a.Ledger == nil {
		return change{}, invalid(op, "this worker has no access ledger: it makes no change it cannot record")
	}
	info := activity.GetInfo(ctx)
	e := ledger.Entry{
		EmployeeID: au.EmployeeID, Application: app, Account: account, Entitlement: entitlement,
		Action: action, Justification: au.Justification, PolicyVersion: au.PolicyVersion,
		WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID, ActivityID: info.ActivityID,
	}
	if err := e.Validate(); err != nil {
		return change{}, invalid(op, "audit: %v", err)
	}
	return change{entry: e, retry: info.Attempt > 1 || au.Retry}, nil
}

// happened reports whether a change must be recorded: when the connector
// reports it made the change, and also on any retry when it reports none,
// because an earlier attempt may have made the change and then failed (a
// timeout, a worker crash, a ledger outage) before recording it; the
// change being idempotent, this attempt found nothing left to do. The
// ledger's key (workflow, run, activity ID) keeps a retry from writing
// twice.
func (c change) happened(changed bool) bool { return changed || c.retry }

// record appends the change to the ledger if write is set, once the
// connector has made it. A ledger error is retryable: the retry repeats the
// idempotent change, finds it made, and records it then.
func (a *Activities) record(ctx context.Context, op string, c change, write bool) error {
	if !write {
		return nil
	}
	if _, err := a.Ledger.Record(ctx, c.entry); err != nil {
		return temporal.NewApplicationError(
			fmt.Sprintf("%s: the change in %s was made but not recorded in the access ledger (retrying): %v", op, c.entry.Application, err),
			string(connectors.KindUnavailable))
	}
	return nil
}
