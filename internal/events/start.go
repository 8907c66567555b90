package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/workflows"
)

// Start validates e and starts (or finds) its workflow. A validation
// failure is an *InvalidError and starts nothing; any other error is
// trouble reaching the server or the people store, and the event may be
// sent again.
//
// The checks that need I/O come after Validate: an unknown manager (hire,
// move), an unknown employee (move, terminate, request-access: neither
// known to People nor onboarded), a move of a leaver, and a new last day
// for an offboarding that already removed access.
func (s *Starter) Start(ctx context.Context, e Event) (Receipt, error) {
	r := Receipt{Type: e.Type, EmployeeID: e.Subject()}
	if err := e.Validate(); err != nil {
		return r, err
	}
	switch e.Type {
	case TypeHire:
		return s.hire(ctx, withDefaults(*e.Person))
	case TypeMove:
		return s.move(ctx, withDefaults(*e.Person))
	case TypeTerminate:
		return s.terminate(ctx, e)
	default: // TypeRequestAccess: Validate refused every other type.
		return s.requestAccess(ctx, e)
	}
}

func (s *Starter) hire(ctx context.Context, p hr.Person) (Receipt, error) {
	id := workflows.OnboardingID(p.EmployeeID)
	r := Receipt{Type: TypeHire, EmployeeID: p.EmployeeID, WorkflowID: id}
	if err := s.checkManager(ctx, p); err != nil {
		return r, err
	}
	run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                s.Config.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Without this the SDK hands back the existing run as if it were
		// new; HR must be told that nothing new started.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		StaticSummary:                            "Onboarding of " + p.EmployeeID,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.AttrEmployeeID.ValueSet(p.EmployeeID),
			workflows.AttrLifecycleEvent.ValueSet(workflows.EventJoiner),
			workflows.AttrLifecycleState.ValueSet(workflows.StatePlanning),
		),
	}, workflows.Onboarding, workflows.OnboardingInput{Person: p})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		// A repeated hire is not an error: it must change nothing.
		info, err := s.describe(ctx, id)
		if err != nil {
			return r, fmt.Errorf("hire of %s already exists but cannot be described: %w", p.EmployeeID, err)
		}
		state := "already done"
		if info.running {
			state = "already in progress"
		}
		return s.existing(r, info, fmt.Sprintf("%s (%s)", state, info.status)), nil
	}
	if err != nil {
		return r, fmt.Errorf("start onboarding of %s: %w", p.EmployeeID, err)
	}
	r.Outcome, r.RunID, r.URL = OutcomeStarted, run.GetRunID(), s.Config.RunURL(id, run.GetRunID())
	return r, nil
}

func (s *Starter) move(ctx context.Context, p hr.Person) (Receipt, error) {
	eid := p.EmployeeID
	key := workflows.MoverChangeKey(p)
	id := workflows.MoverID(eid, key)
	r := Receipt{Type: TypeMove, EmployeeID: eid, WorkflowID: id}
	if err := s.checkMovable(ctx, eid); err != nil {
		return r, err
	}
	if err := s.checkManager(ctx, p); err != nil {
		return r, err
	}
	known, prevRun, err := s.moverKnown(ctx, eid, id)
	if err != nil {
		return r, err
	}
	receipt, err := s.submitMove(ctx, workflows.MoveSubmission{
		Move: workflows.MoverInput{Person: p, ChangeKey: key}, Known: known,
	})
	if err != nil {
		return r, fmt.Errorf("queue role change of %s: %w", eid, err)
	}
	if receipt.New {
		r.Outcome, r.PreviousRunID, r.URL = OutcomeQueued, prevRun, s.Config.RunURL(id, "")
		r.Detail = "runs after any earlier role change of the person (" + workflows.PersonEventsID(eid) + ")"
		return r, nil
	}
	// A repeated change is not an error: it must change nothing.
	info, err := s.describe(ctx, id)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		// Queued behind an earlier change of the person: not started yet.
		r.Outcome, r.Status, r.URL = OutcomeExisting, "queued", s.Config.RunURL(id, "")
		r.Detail = "already in progress (queued)"
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("role change %s already exists but cannot be described: %w", id, err)
	}
	state := "already applied"
	if info.running {
		state = "already in progress"
	}
	return s.existing(r, info, fmt.Sprintf("%s (%s, %s)", state, info.status, orDash(info.state))), nil
}

// checkMovable refuses an employee being offboarded (a leaver is not
// moved) and one this system does not know.
func (s *Starter) checkMovable(ctx context.Context, employeeID string) error {
	off, err := s.describe(ctx, workflows.OffboardingID(employeeID))
	var nf *serviceerror.NotFound
	switch {
	case err == nil && !(off.status == "canceled" && off.state == workflows.StateRetracted):
		return invalid("employee_id", fmt.Sprintf("%s is being offboarded (%s, %s): a leaver is not moved", employeeID, off.status, orDash(off.state)))
	case err != nil && !errors.As(err, &nf):
		return fmt.Errorf("look up the offboarding of %s: %w", employeeID, err)
	}
	return s.checkEmployee(ctx, employeeID, "hire them first")
}

// moverKnown tells whether the change of id already ran or runs, as far
// as the server shows: running, or completed with no later role change of
// the person (a change back, A -> B -> A, is new). It also returns the run
// id has now, so a caller waiting can tell the new run from it.
func (s *Starter) moverKnown(ctx context.Context, employeeID, id string) (bool, string, error) {
	desc, err := s.Client.DescribeWorkflow(ctx, id, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return false, "", nil
	case err != nil:
		return false, "", fmt.Errorf("look up role change %s: %w", id, err)
	}
	runID := desc.WorkflowExecution.RunID
	switch {
	case desc.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return true, runID, nil
	case desc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED || desc.WorkflowCloseTime == nil:
		return false, runID, nil
	}
	query := fmt.Sprintf("%s = '%s' AND %s = '%s' AND StartTime > '%s'",
		workflows.AttrEmployeeID.GetName(), employeeID, workflows.AttrLifecycleEvent.GetName(), workflows.EventMover,
		desc.WorkflowCloseTime.UTC().Format(time.RFC3339Nano))
	resp, err := s.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: 1})
	if err != nil {
		return false, "", fmt.Errorf("list later role changes of %s: %w", employeeID, err)
	}
	return len(resp.GetExecutions()) == 0, runID, nil
}

// submitMove hands the change to the person's sequencer, starting it if
// none runs, and returns as soon as the change is queued: the sequencer,
// not visibility, orders the person's role changes.
func (s *Starter) submitMove(ctx context.Context, sub workflows.MoveSubmission) (workflows.MoveReceipt, error) {
	eid := sub.Move.Person.EmployeeID
	start := s.Client.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       workflows.PersonEventsID(eid),
		TaskQueue:                s.Config.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            "Role changes of " + eid + ", one at a time",
	}, workflows.PersonEvents, workflows.PersonEventsInput{EmployeeID: eid})
	h, err := s.Client.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   workflows.UpdateSubmitMove,
			Args:         []any{sub},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		return workflows.MoveReceipt{}, err
	}
	var r workflows.MoveReceipt
	if err := h.Get(ctx, &r); err != nil {
		return workflows.MoveReceipt{}, err
	}
	return r, nil
}

func (s *Starter) terminate(ctx context.Context, e Event) (Receipt, error) {
	eid, lastDay := e.EmployeeID, e.Effective
	id := workflows.OffboardingID(eid)
	r := Receipt{Type: TypeTerminate, EmployeeID: eid, WorkflowID: id}
	// A typo must not look like a finished leaver.
	if err := s.checkEmployee(ctx, eid, "nothing to offboard"); err != nil {
		return r, err
	}
	now := s.now()
	end := AccessEnd(lastDay, now)
	state := workflows.StateDisabling
	if end.After(now) {
		state = workflows.StateScheduled
	}
	run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: workflows.RevocationTaskQueue(s.Config.TaskQueue),
		// A completed offboarding is never repeated, but a retracted
		// (cancelled) or failed one must not block a later termination.
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		StaticSummary:                            "Offboarding of " + eid,
		// A leaver must not wait behind a mass hire: the server hands out
		// the offboarding's tasks (its activities inherit the priority)
		// before any queued joiner's.
		Priority: temporal.Priority{PriorityKey: PriorityRevocation},
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.AttrEmployeeID.ValueSet(eid),
			workflows.AttrLifecycleEvent.ValueSet(workflows.EventLeaver),
			workflows.AttrLifecycleState.ValueSet(state),
		),
	}, workflows.Offboarding, workflows.OffboardingInput{EmployeeID: eid, LastDay: lastDay, Reason: e.Reason})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return s.existingOffboarding(ctx, r, lastDay)
	}
	if err != nil {
		return r, fmt.Errorf("start offboarding of %s: %w", eid, err)
	}
	r.Outcome, r.RunID, r.URL, r.AccessEnds = OutcomeStarted, run.GetRunID(), s.Config.RunURL(id, run.GetRunID()), end
	return r, nil
}

// existingOffboarding handles a termination of someone whose offboarding
// already runs or ran: a new last day moves a scheduled run; anything else
// only reports.
func (s *Starter) existingOffboarding(ctx context.Context, r Receipt, lastDay hr.Date) (Receipt, error) {
	eid, id := r.EmployeeID, r.WorkflowID
	info, err := s.describe(ctx, id)
	if err != nil {
		return r, fmt.Errorf("offboarding of %s already exists but cannot be described: %w", eid, err)
	}
	switch {
	case !info.running:
		return s.existing(r, info, fmt.Sprintf("already done (%s, %s)", info.status, orDash(info.state))), nil
	case lastDay.IsZero() && info.state != workflows.StateScheduled:
		return s.existing(r, info, fmt.Sprintf("already in progress (%s)", orDash(info.state))), nil
	case info.state != workflows.StateScheduled:
		return r, invalid("effective", fmt.Sprintf("the offboarding of %s has already removed access (state %s): the new last day %s changes nothing",
			eid, orDash(info.state), lastDay))
	}
	if err := s.Client.SignalWorkflow(ctx, id, info.runID, workflows.SignalReschedule, workflows.RescheduleInput{LastDay: lastDay}); err != nil {
		return r, fmt.Errorf("reschedule offboarding of %s: %w", eid, err)
	}
	// A termination without a day on a scheduled offboarding (a contractor
	// whose end date is planned, then let go early) moves it to now: the
	// person is leaving today, not at the end of the contract.
	detail := "last day " + lastDay.String()
	if lastDay.IsZero() {
		detail = "access ends now"
	}
	r = s.existing(r, info, detail)
	r.Outcome, r.AccessEnds = OutcomeRescheduled, AccessEnd(lastDay, s.now())
	return r, nil
}

func (s *Starter) requestAccess(ctx context.Context, e Event) (Receipt, error) {
	eid := e.EmployeeID
	ref, _ := ParseEntitlement(e.Entitlement) // checked by Validate
	d, _ := ParseDuration(e.Duration)
	id := workflows.TemporaryAccessID(eid, ref.Application, ref.Entitlement)
	r := Receipt{Type: TypeRequestAccess, EmployeeID: eid, WorkflowID: id,
		RequestID: workflows.ApprovalRequestID(id, ref.Application, ref.Entitlement)}
	if err := s.checkEmployee(ctx, eid, "hire them first"); err != nil {
		return r, err
	}
	run, err := s.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: s.Config.TaskQueue,
		// A new grant may follow one that ended; one that runs is reported.
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		StaticSummary:                            "Temporary access " + ref.String() + " for " + eid,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.AttrEmployeeID.ValueSet(eid),
			workflows.AttrLifecycleEvent.ValueSet(workflows.EventTemporaryAccess),
			workflows.AttrLifecycleState.ValueSet(workflows.StatePlanning),
		),
	}, workflows.TemporaryAccess, workflows.TemporaryAccessInput{
		EmployeeID: eid, Application: ref.Application, Entitlement: ref.Entitlement,
		Duration: d, RequestedBy: e.RequestedBy, Justification: e.Justification,
	})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		r.Outcome, r.RunID, r.Status, r.URL = OutcomeExisting, started.RunId, "running", s.Config.RunURL(id, started.RunId)
		r.Detail = "already requested or held"
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("request %s for %s: %w", ref, eid, err)
	}
	r.Outcome, r.RunID, r.URL = OutcomeStarted, run.GetRunID(), s.Config.RunURL(id, run.GetRunID())
	return r, nil
}

// checkManager refuses a manager HR does not know: approvals would go to
// nobody.
func (s *Starter) checkManager(ctx context.Context, p hr.Person) error {
	if p.ManagerID == "" {
		return nil
	}
	ok, err := s.known(ctx, p.ManagerID)
	if err != nil {
		return fmt.Errorf("manager %s: %w", p.ManagerID, err)
	}
	if !ok {
		return invalid("manager_id", fmt.Sprintf("unknown manager %s: not in the HR roster and never onboarded by this system", p.ManagerID))
	}
	return nil
}

// checkEmployee refuses an employee this system does not know; then says
// what to do instead.
func (s *Starter) checkEmployee(ctx context.Context, employeeID, then string) error {
	ok, err := s.known(ctx, employeeID)
	if err != nil {
		return err
	}
	if !ok {
		return invalid("employee_id", fmt.Sprintf("unknown employee %s: not in the HR roster, never onboarded by this system and no username reserved; %s", employeeID, then))
	}
	return nil
}

// known asks People first, then whether an onboarding run exists, so a
// person onboarded by this system is known even while the people store is
// down.
func (s *Starter) known(ctx context.Context, employeeID string) (bool, error) {
	var peopleErr error
	if s.People != nil {
		ok, err := s.People.Known(ctx, employeeID)
		if err == nil && ok {
			return true, nil
		}
		peopleErr = err
	}
	_, err := s.Client.DescribeWorkflow(ctx, workflows.OnboardingID(employeeID), "")
	var nf *serviceerror.NotFound
	switch {
	case err == nil:
		return true, nil
	case !errors.As(err, &nf):
		return false, fmt.Errorf("look up the onboarding of %s: %w", employeeID, err)
	case peopleErr != nil:
		return false, fmt.Errorf("cannot tell whether %s is known (no onboarding run; %w)", employeeID, peopleErr)
	}
	return false, nil
}

// describedRun is what describe reads of a workflow's latest run.
type describedRun struct {
	runID, status, state string
	running              bool
}

func (s *Starter) describe(ctx context.Context, id string) (describedRun, error) {
	desc, err := s.Client.DescribeWorkflow(ctx, id, "")
	if err != nil {
		return describedRun{}, err
	}
	state, _ := desc.TypedSearchAttributes.GetKeyword(workflows.AttrLifecycleState)
	return describedRun{
		runID:   desc.WorkflowExecution.RunID,
		status:  StatusName(desc.Status),
		state:   state,
		running: desc.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
	}, nil
}

// existing fills r for an event that found its run already there.
func (s *Starter) existing(r Receipt, info describedRun, detail string) Receipt {
	r.Outcome, r.RunID, r.Status, r.State = OutcomeExisting, info.runID, info.status, info.state
	r.URL, r.Detail = s.Config.RunURL(r.WorkflowID, info.runID), detail
	return r
}

// StatusName is a workflow status as people read it: "running",
// "completed", "canceled", ...
func StatusName(st enumspb.WorkflowExecutionStatus) string {
	return strings.ToLower(strings.TrimPrefix(st.String(), "WORKFLOW_EXECUTION_STATUS_"))
}

// AccessEnd mirrors the offboarding workflow: access ends when the last
// day ends (midnight UTC), or now when no day is given or it is over.
func AccessEnd(lastDay hr.Date, now time.Time) time.Time {
	if lastDay.IsZero() {
		return now
	}
	t := lastDay.UTC()
	if end := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC); end.After(now) {
		return end
	}
	return now
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
