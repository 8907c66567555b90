package workflows

import (
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/provisio-dev/provisio/internal/hr"
)

const seqEmployee = "E100001"

// moverRun is one run of the fake mover: its ID and when it started and
// closed, in workflow time.
type moverRun struct {
	id           string
	start, close time.Time
}

type seqEnv struct {
	*testsuite.TestWorkflowEnvironment
	mu   sync.Mutex
	runs []moverRun
}

// newSeqEnv registers PersonEvents and, under the name Mover, a fake mover
// that takes an hour and records its run.
func newSeqEnv(t *testing.T) *seqEnv {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := &seqEnv{TestWorkflowEnvironment: s.NewTestWorkflowEnvironment()}
	env.SetStartTime(testStart)
	env.RegisterWorkflow(PersonEvents)
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context, in MoverInput) (MoverResult, error) {
		r := moverRun{id: workflow.GetInfo(ctx).WorkflowExecution.ID, start: workflow.Now(ctx)}
		if err := workflow.Sleep(ctx, time.Hour); err != nil {
			return MoverResult{}, err
		}
		r.close = workflow.Now(ctx)
		env.mu.Lock()
		env.runs = append(env.runs, r)
		env.mu.Unlock()
		return MoverResult{EmployeeID: in.Person.EmployeeID}, nil
	}, workflow.RegisterOptions{Name: "Mover"})
	return env
}

func seqMove(title string) MoveSubmission {
	p := hr.Person{
		EmployeeID: seqEmployee, GivenName: "Ada", FamilyName: "Lovelace", Email: "ada@example.com",
		Department: "Sales", Title: title, Location: "Berlin", EmploymentType: hr.TypeEmployee,
		StartDate: hr.Date{Time: time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)}, Status: hr.StatusActive,
	}
	return MoveSubmission{Move: MoverInput{Person: p, ChangeKey: MoverChangeKey(p)}}
}

// submitAll sends the submissions back to back at the start and collects
// the receipts, or the errors of rejected ones.
func (env *seqEnv) submitAll(t *testing.T, subs ...MoveSubmission) ([]MoveReceipt, []error) {
	t.Helper()
	receipts := make([]MoveReceipt, len(subs))
	errs := make([]error, len(subs))
	env.RegisterDelayedCallback(func() {
		for i, sub := range subs {
			env.UpdateWorkflow(UpdateSubmitMove, "", &testsuite.TestUpdateCallback{
				OnAccept: func() {},
				OnReject: func(err error) { errs[i] = err },
				OnComplete: func(v any, err error) {
					if err != nil {
						errs[i] = err
						return
					}
					receipts[i] = v.(MoveReceipt)
				},
			}, sub)
		}
	}, 0)
	return receipts, errs
}

func TestPersonEventsRunsMovesOneAtATime(t *testing.T) {
	a, b := seqMove("Account Executive"), seqMove("Sales Engineer")
	tests := []struct {
		name string
		subs []MoveSubmission
		// want are the receipts' New, and the mover IDs that ran, in order.
		wantNew  []bool
		wantRuns []MoveSubmission
	}{
		{"two changes back to back", []MoveSubmission{a, b}, []bool{true, true}, []MoveSubmission{a, b}},
		{"the same change twice", []MoveSubmission{a, a}, []bool{true, false}, []MoveSubmission{a}},
		{"a change back", []MoveSubmission{a, b, a}, []bool{true, true, true}, []MoveSubmission{a, b, a}},
		{"known to the CLI and not to a new run", []MoveSubmission{{Move: a.Move, Known: true}}, []bool{false}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newSeqEnv(t)
			receipts, errs := env.submitAll(t, tt.subs...)
			env.ExecuteWorkflow(PersonEvents, PersonEventsInput{EmployeeID: seqEmployee})
			require.True(t, env.IsWorkflowCompleted())
			require.NoError(t, env.GetWorkflowError(), "an idle sequencer ends")
			for i, sub := range tt.subs {
				require.NoError(t, errs[i])
				assert.Equal(t, MoverID(seqEmployee, sub.Move.ChangeKey), receipts[i].WorkflowID, "receipt %d", i)
				assert.Equal(t, tt.wantNew[i], receipts[i].New, "receipt %d", i)
			}
			require.Len(t, env.runs, len(tt.wantRuns))
			for i, want := range tt.wantRuns {
				assert.Equal(t, MoverID(seqEmployee, want.Move.ChangeKey), env.runs[i].id)
				if i > 0 {
					assert.False(t, env.runs[i].start.Before(env.runs[i-1].close),
						"run %d started at %s, before run %d closed at %s", i, env.runs[i].start, i-1, env.runs[i-1].close)
				}
			}
		})
	}
}

func TestPersonEventsRejectsInvalidInput(t *testing.T) {
	other := seqMove("Rep")
	other.Move.Person.EmployeeID = "E100002"
	badKey := seqMove("Rep")
	badKey.Move.ChangeKey = "a/b"
	noEmail := seqMove("Rep")
	noEmail.Move.Person.Email = ""
	env := newSeqEnv(t)
	_, errs := env.submitAll(t, other, badKey, noEmail)
	env.ExecuteWorkflow(PersonEvents, PersonEventsInput{EmployeeID: seqEmployee})
	require.NoError(t, env.GetWorkflowError())
	for i, want := range []string{"does not belong", "change key", "invalid HR record"} {
		require.Error(t, errs[i])
		assert.Contains(t, errs[i].Error(), want)
	}
	assert.Empty(t, env.runs, "a rejected change queues nothing")
}

func TestPersonEventsEndsWhenIdle(t *testing.T) {
	env := newSeqEnv(t)
	env.ExecuteWorkflow(PersonEvents, PersonEventsInput{EmployeeID: seqEmployee})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	assert.True(t, testStart.Add(DefaultPersonIdle).Equal(env.Now()), "ended at %s", env.Now())
}

func TestPersonEventsStateQuery(t *testing.T) {
	a, b := seqMove("Account Executive"), seqMove("Sales Engineer")
	env := newSeqEnv(t)
	env.submitAll(t, a, b)
	var st PersonEventsState
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(QueryState)
		require.NoError(t, err)
		require.NoError(t, v.Get(&st))
	}, time.Minute)
	env.ExecuteWorkflow(PersonEvents, PersonEventsInput{EmployeeID: seqEmployee})
	require.NoError(t, env.GetWorkflowError())
	assert.Equal(t, MoverID(seqEmployee, a.Move.ChangeKey), st.Current)
	assert.Equal(t, []string{MoverID(seqEmployee, b.Move.ChangeKey)}, st.Queue)
	assert.Equal(t, []string{a.Move.ChangeKey, b.Move.ChangeKey}, st.Recent)
}

func TestPersonEventsContinuesAsNewWithItsQueue(t *testing.T) {
	a, b, c := seqMove("Account Executive"), seqMove("Sales Engineer"), seqMove("Sales Manager")
	env := newSeqEnv(t)
	env.submitAll(t, a, b, c)
	env.ExecuteWorkflow(PersonEvents, PersonEventsInput{EmployeeID: seqEmployee, MovesPerRun: 1})
	require.True(t, env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(env.GetWorkflowError(), &can), "got %v", env.GetWorkflowError())
	var next PersonEventsInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Len(t, env.runs, 1, "it continues as new after the first change closed")
	assert.Equal(t, []MoverInput{b.Move, c.Move}, next.Queue)
	assert.Equal(t, c.Move.ChangeKey, next.LastKey)
	assert.Equal(t, []string{a.Move.ChangeKey, b.Move.ChangeKey, c.Move.ChangeKey}, next.Recent)

	// The next run picks the queue up, and still knows the last change.
	env2 := newSeqEnv(t)
	next.MovesPerRun = 0
	receipts, _ := env2.submitAll(t, c)
	env2.ExecuteWorkflow(PersonEvents, next)
	require.NoError(t, env2.GetWorkflowError())
	assert.False(t, receipts[0].New, "the last change repeated after continue-as-new")
	require.Len(t, env2.runs, 2)
	assert.Equal(t, MoverID(seqEmployee, b.Move.ChangeKey), env2.runs[0].id)
	assert.Equal(t, MoverID(seqEmployee, c.Move.ChangeKey), env2.runs[1].id)
}
