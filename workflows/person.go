package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// UpdateSubmitMove is the update of PersonEvents that queues a role change.
const UpdateSubmitMove = "submit-move"

// Defaults of PersonEventsInput.
const (
	// DefaultPersonIdle is how long a sequencer with nothing queued waits
	// before it ends; the next role change starts a new run.
	DefaultPersonIdle = 10 * time.Minute
	// personRecentKeys bounds the change keys a run remembers.
	personRecentKeys = 20
)

// MoveSubmission is the argument of UpdateSubmitMove: a role change as the
// CLI would start it, plus what the CLI saw on the server.
type MoveSubmission struct {
	Move MoverInput `json:"move"`
	// Known is true when the mover of this change key already runs, or
	// completed with no later role change after it, as far as the CLI
	// could see. A sequencer that remembers no earlier change of the
	// person trusts it; one that does decides by its own memory.
	Known bool `json:"known,omitempty"`
}

// MoveReceipt answers UpdateSubmitMove as soon as the change is queued.
type MoveReceipt struct {
	// WorkflowID is the mover's ID (MoverID), queued or existing.
	WorkflowID string `json:"workflowId"`
	// New is false for a repeated change: nothing was queued.
	New bool `json:"new"`
}

// PersonEventsInput starts a sequencer; a continue-as-new carries its
// queue and memory along.
type PersonEventsInput struct {
	EmployeeID string `json:"employeeId"`
	// Queue holds the changes not started yet, oldest first.
	Queue []MoverInput `json:"queue,omitempty"`
	// LastKey is the change key submitted last; the same key again is a
	// repeated event.
	LastKey string `json:"lastKey,omitempty"`
	// Recent are the last change keys queued, oldest first, bounded.
	Recent []string `json:"recent,omitempty"`
	// Idle overrides DefaultPersonIdle (tests).
	Idle time.Duration `json:"idle,omitempty"`
	// MovesPerRun, when set, continues as new after this many changes,
	// besides when the server suggests it (tests).
	MovesPerRun int `json:"movesPerRun,omitempty"`
}

// PersonEventsState answers QueryState.
type PersonEventsState struct {
	EmployeeID string `json:"employeeId"`
	// Current is the mover running now, if any.
	Current string `json:"current,omitempty"`
	// Queue lists the movers waiting their turn, oldest first.
	Queue  []string `json:"queue,omitempty"`
	Recent []string `json:"recent,omitempty"`
}

// PersonEvents is one person's sequencer of role changes. `starter move`
// reaches it with Update-With-Start (UpdateSubmitMove) instead of starting
// a Mover, so the person's changes run strictly one after the other, in
// the order they arrived, each as a child Mover with the usual MoverID.
// Visibility alone cannot promise that: two changes sent within a second
// could see nothing of each other.
//
// Children are abandoned, not owned: ending, resetting or continuing this
// run never stops a move. The sequencer ends after Idle with nothing
// queued, and continues as new when its history grows large.
//
// Hires and terminations do not pass through here: a mover already waits
// for the onboarding, and an offboarding cancels onboarding, movers and
// temporary access (a leaver wins), which needs no queue.
func PersonEvents(ctx workflow.Context, in PersonEventsInput) error {
	s := &personEvents{in: in}
	if s.in.Idle <= 0 {
		s.in.Idle = DefaultPersonIdle
	}
	if err := workflow.SetQueryHandler(ctx, QueryState, s.state); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateSubmitMove, s.submit,
		workflow.UpdateHandlerOptions{Validator: s.validate}); err != nil {
		return err
	}
	return s.run(ctx)
}

type personEvents struct {
	in      PersonEventsInput
	current string
}

func (s *personEvents) state() (PersonEventsState, error) {
	st := PersonEventsState{EmployeeID: s.in.EmployeeID, Current: s.current, Recent: slices.Clone(s.in.Recent)}
	for _, m := range s.in.Queue {
		st.Queue = append(st.Queue, MoverID(m.Person.EmployeeID, m.ChangeKey))
	}
	return st, nil
}

func (s *personEvents) validate(sub MoveSubmission) error {
	p := sub.Move.Person
	switch {
	case p.EmployeeID != s.in.EmployeeID:
		return fmt.Errorf("employee_id %q does not belong to the sequencer of %s", clipID(p.EmployeeID), s.in.EmployeeID)
	case !safeIDPart(sub.Move.ChangeKey):
		return fmt.Errorf("change key %q must be 1-128 letters, digits, '.', '_' or '-'", clipID(sub.Move.ChangeKey))
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("invalid HR record: %w", err)
	}
	return nil
}

// submit queues a change unless it repeats the last one. A change back to
// earlier attributes (A, B, A) is a new change and is queued.
func (s *personEvents) submit(ctx workflow.Context, sub MoveSubmission) (MoveReceipt, error) {
	key := sub.Move.ChangeKey
	r := MoveReceipt{WorkflowID: MoverID(s.in.EmployeeID, key)}
	if key == s.in.LastKey || (s.in.LastKey == "" && sub.Known) {
		s.in.LastKey = key
		return r, nil
	}
	s.in.LastKey = key
	s.in.Queue = append(s.in.Queue, sub.Move)
	s.in.Recent = append(s.in.Recent, key)
	if n := len(s.in.Recent) - personRecentKeys; n > 0 {
		s.in.Recent = slices.Delete(s.in.Recent, 0, n)
	}
	r.New = true
	return r, nil
}

func (s *personEvents) run(ctx workflow.Context) error {
	log := workflow.GetLogger(ctx)
	for done := 1; ; done++ {
		queued, err := workflow.AwaitWithTimeout(ctx, s.in.Idle, func() bool { return len(s.in.Queue) > 0 })
		if err != nil {
			return err
		}
		if !queued && len(s.in.Queue) == 0 {
			// Updates run before the timer in a task, so none is lost
			// here; a later one starts a new run.
			return workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
		}
		next := s.in.Queue[0]
		s.in.Queue = s.in.Queue[1:]
		if err := s.runMove(ctx, next); err != nil {
			log.Warn("Role change did not complete", "workflowId", MoverID(next.Person.EmployeeID, next.ChangeKey), "error", err)
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() || (s.in.MovesPerRun > 0 && done >= s.in.MovesPerRun) {
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return err
			}
			return workflow.NewContinueAsNewError(ctx, PersonEvents, s.in)
		}
	}
}

// runMove starts one mover and waits for it to close. The sequencer is the
// one deciding what is new, so a closed run of the same ID is replaced.
func (s *personEvents) runMove(ctx workflow.Context, m MoverInput) error {
	id := MoverID(m.Person.EmployeeID, m.ChangeKey)
	s.current = id
	defer func() { s.current = "" }()
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            id,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		StaticSummary:         "Role change of " + m.Person.EmployeeID,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			AttrEmployeeID.ValueSet(m.Person.EmployeeID),
			AttrLifecycleEvent.ValueSet(EventMover),
			AttrLifecycleState.ValueSet(StateWaitingTurn),
		),
	})
	f := workflow.ExecuteChildWorkflow(cctx, Mover, m)
	if err := f.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		var started *temporal.ChildWorkflowExecutionAlreadyStartedError
		if errors.As(err, &started) {
			// Started outside this sequencer and still running: the
			// same change, already under way.
			return nil
		}
		return fmt.Errorf("start %s: %w", id, err)
	}
	return f.Get(ctx, nil)
}
