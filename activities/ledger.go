package activities

import (
	"context"
	"fmt"
	"time"

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
	// RequestedAt is when the workflow first asked for a revocation
	// (disable, revoke, delete), for the ledger; a step a workflow tries
	// again keeps the time of its first try. Zero means when the activity
	// was scheduled.
	RequestedAt time.Time `json:"requestedAt,omitzero"`
	// Fallback marks a DeleteAccount made because the application ignored
	// a disable and the policy's disable_fallback is delete: the ledger
	// records the deletion as verified by fallback-delete.
	Fallback bool `json:"fallback,omitempty"`
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
	if action.IsRevocation() {
		e.RequestedAt = au.RequestedAt
		if e.RequestedAt.IsZero() {
			e.RequestedAt = info.ScheduledTime
		}
		e.RequestedAt = e.RequestedAt.UTC()
	}
	if au.Fallback && action != ledger.ActionDeleted {
		return change{}, invalid(op, "audit: fallback is only for deleting an account whose disable was ignored")
	}
	if err := e.Validate(); err != nil {
		return change{}, invalid(op, "audit: %v", err)
	}
	return change{entry: e, retry: info.Attempt > 1 || au.Retry}, nil
}

// verifyReads are the pauses before each read-back of a revocation: an
// application may apply a change a moment after it answered (a backend
// still exiting, a replica catching up), so one read that disagrees is not
// yet a failure. The activity's retry policy takes over after the last.
var verifyReads = []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond, time.Second}

// verify reads the application back until it shows the revocation in
// effect, and marks the change verified by how. A read-back that never
// shows it is a retryable NotVerified error: the application accepted
// the change and did not apply it, so the workflow must not count it done.
func (a *Activities) verify(ctx context.Context, op string, c connectors.Connector, ch *change, req connectors.VerifyRequest, how string) error {
	var v connectors.Verification
	for _, pause := range verifyReads {
		if pause > 0 {
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		var err error
		if v, err = c.Verify(ctx, req); err != nil {
			return classify(ch.entry.Application, op, fmt.Errorf("reading the change back: %w", err))
		}
		if v.Verified {
			ch.entry.VerifiedAt, ch.entry.VerifiedBy = time.Now().UTC(), how
			return nil
		}
	}
	return temporal.NewApplicationError(
		fmt.Sprintf("%s %s: not verified: the application accepted the change but reading it back shows %s", ch.entry.Application, op, v.Detail),
		string(connectors.KindNotVerified))
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
