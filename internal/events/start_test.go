package events

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/workflows"
)

// fakePeople knows the IDs in the map; err, when set, is every answer.
type fakePeople struct {
	known map[string]bool
	err   error
}

func (f fakePeople) Known(_ context.Context, id string) (bool, error) {
	if f.err != nil {
		return false, f.err
	}
	return f.known[id], nil
}

var testNow = time.Date(2026, 6, 10, 15, 0, 0, 0, time.UTC)

func newStarter(c client.Client, people People) *Starter {
	return &Starter{Client: c, People: people, Now: func() time.Time { return testNow },
		Config: config.Config{TaskQueue: "q", UIURL: "http://ui", TemporalNamespace: "default"}}
}

func desc(runID string, st enumspb.WorkflowExecutionStatus, state string) *client.WorkflowExecutionDescription {
	d := &client.WorkflowExecutionDescription{WorkflowExecutionMetadata: client.WorkflowExecutionMetadata{
		WorkflowExecution: workflow.Execution{RunID: runID}, Status: st,
	}}
	if state != "" {
		d.TypedSearchAttributes = temporal.NewSearchAttributes(workflows.AttrLifecycleState.ValueSet(state))
	}
	return d
}

func notFound() error { return serviceerror.NewNotFound("workflow not found") }

func run(id string) *mocks.WorkflowRun {
	r := &mocks.WorkflowRun{}
	r.On("GetRunID").Return(id)
	return r
}

// assertNothingStarted checks that no workflow was started, signalled or
// updated.
func assertNothingStarted(t *testing.T, c *mocks.Client) {
	t.Helper()
	c.AssertNotCalled(t, "ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything)
	c.AssertNotCalled(t, "UpdateWithStartWorkflow", mock.Anything, mock.Anything)
	c.AssertNotCalled(t, "SignalWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything)
}

func TestStartHire(t *testing.T) {
	c := &mocks.Client{}
	var opts client.StartWorkflowOptions
	var in workflows.OnboardingInput
	c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		opts = a.Get(1).(client.StartWorkflowOptions)
		in = a.Get(3).(workflows.OnboardingInput)
	}).Return(run("run-1"), nil)
	p := person("E100001")
	p.Status, p.ManagerID = "", "E100008"
	r, err := newStarter(c, fakePeople{known: map[string]bool{"E100008": true}}).Start(context.Background(), Event{Type: TypeHire, Person: p})
	require.NoError(t, err)
	assert.Equal(t, Receipt{Type: TypeHire, EmployeeID: "E100001", WorkflowID: "onboarding-E100001", RunID: "run-1", Outcome: OutcomeStarted,
		URL: "http://ui/namespaces/default/workflows/onboarding-E100001/run-1/history"}, r)
	assert.Equal(t, "onboarding-E100001", opts.ID)
	assert.Equal(t, "q", opts.TaskQueue)
	assert.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, opts.WorkflowIDReusePolicy)
	assert.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, opts.WorkflowIDConflictPolicy)
	assert.True(t, opts.WorkflowExecutionErrorWhenAlreadyStarted)
	ev, _ := opts.TypedSearchAttributes.GetKeyword(workflows.AttrLifecycleEvent)
	emp, _ := opts.TypedSearchAttributes.GetKeyword(workflows.AttrEmployeeID)
	assert.Equal(t, workflows.EventJoiner, ev)
	assert.Equal(t, "E100001", emp)
	assert.Equal(t, hr.StatusActive, in.Person.Status, "an empty status is active")
}

func TestStartHireExisting(t *testing.T) {
	for _, tt := range []struct {
		status enumspb.WorkflowExecutionStatus
		detail string
	}{
		{enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, "already in progress (running)"},
		{enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, "already done (completed)"},
	} {
		c := &mocks.Client{}
		c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).
			Return(nil, serviceerror.NewWorkflowExecutionAlreadyStarted("started", "", "run-0"))
		c.On("DescribeWorkflow", mock.Anything, "onboarding-E100001", "").Return(desc("run-0", tt.status, workflows.StatePlanning), nil)
		r, err := newStarter(c, nil).Start(context.Background(), Event{Type: TypeHire, Person: person("E100001")})
		require.NoError(t, err)
		assert.Equal(t, OutcomeExisting, r.Outcome)
		assert.Equal(t, tt.detail, r.Detail)
		assert.Equal(t, "run-0", r.RunID)
	}
}

// TestStartRefusesBeforeStarting covers every check Start makes with I/O:
// each is an InvalidError naming the field, and nothing starts.
func TestStartRefusesBeforeStarting(t *testing.T) {
	withManager := person("E100001")
	withManager.ManagerID = "E199999"
	tests := []struct {
		name string
		e    Event
		// setup adds the server's answers.
		setup func(c *mocks.Client)
		want  string
	}{
		{"hire, unknown manager", Event{Type: TypeHire, Person: withManager}, func(c *mocks.Client) {
			c.On("DescribeWorkflow", mock.Anything, "onboarding-E199999", "").Return(nil, notFound())
		}, "manager_id: unknown manager E199999"},
		{"move, unknown employee", Event{Type: TypeMove, Person: person("E100001")}, func(c *mocks.Client) {
			c.On("DescribeWorkflow", mock.Anything, mock.Anything, "").Return(nil, notFound())
		}, "employee_id: unknown employee E100001"},
		{"move, unknown manager", Event{Type: TypeMove, Person: withManager}, func(c *mocks.Client) {
			c.On("DescribeWorkflow", mock.Anything, "offboarding-E100001", "").Return(nil, notFound())
			c.On("DescribeWorkflow", mock.Anything, "onboarding-E100001", "").Return(desc("r", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, ""), nil)
			c.On("DescribeWorkflow", mock.Anything, "onboarding-E199999", "").Return(nil, notFound())
		}, "manager_id: unknown manager E199999"},
		{"move, a leaver", Event{Type: TypeMove, Person: person("E100001")}, func(c *mocks.Client) {
			c.On("DescribeWorkflow", mock.Anything, "offboarding-E100001", "").
				Return(desc("r", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, workflows.StateScheduled), nil)
		}, "employee_id: E100001 is being offboarded (running, scheduled): a leaver is not moved"},
		{"terminate, unknown employee", Event{Type: TypeTerminate, EmployeeID: "E100001"}, func(c *mocks.Client) {
			c.On("DescribeWorkflow", mock.Anything, "onboarding-E100001", "").Return(nil, notFound())
		}, "employee_id: unknown employee E100001"},
		{"terminate, access already removed", Event{Type: TypeTerminate, EmployeeID: "E100002", Effective: date("2026-12-31")}, func(c *mocks.Client) {
			c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).
				Return(nil, serviceerror.NewWorkflowExecutionAlreadyStarted("started", "", "r"))
			c.On("DescribeWorkflow", mock.Anything, "offboarding-E100002", "").
				Return(desc("r", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, workflows.StateRetention), nil)
		}, "effective: the offboarding of E100002 has already removed access (state retention)"},
		{"request access, unknown employee", Event{Type: TypeRequestAccess, EmployeeID: "E100001", Entitlement: "ldap/vpn"}, func(c *mocks.Client) {
			c.On("DescribeWorkflow", mock.Anything, "onboarding-E100001", "").Return(nil, notFound())
		}, "employee_id: unknown employee E100001"},
		{"shape", Event{Type: TypeHire}, func(*mocks.Client) {}, "person: is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &mocks.Client{}
			tt.setup(c)
			_, err := newStarter(c, fakePeople{known: map[string]bool{"E100002": true}}).Start(context.Background(), tt.e)
			require.Error(t, err)
			assert.True(t, IsInvalid(err), "%v", err)
			assert.Contains(t, err.Error(), tt.want)
			if tt.name != "terminate, access already removed" {
				assertNothingStarted(t, c)
			}
			c.AssertNotCalled(t, "SignalWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything)
		})
	}
}

func TestStartKnownFallsBackToTheServer(t *testing.T) {
	down := fakePeople{err: errors.New("connection refused")}
	// An onboarded person is known even while the people store is down.
	c := &mocks.Client{}
	c.On("DescribeWorkflow", mock.Anything, "onboarding-E100001", "").Return(desc("r", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, ""), nil)
	c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(run("run-2"), nil)
	r, err := newStarter(c, down).Start(context.Background(), Event{Type: TypeRequestAccess, EmployeeID: "E100001", Entitlement: "ldap/vpn"})
	require.NoError(t, err)
	assert.Equal(t, OutcomeStarted, r.Outcome)

	// Otherwise the store's trouble is trouble, not an unknown person.
	c = &mocks.Client{}
	c.On("DescribeWorkflow", mock.Anything, "onboarding-E100001", "").Return(nil, notFound())
	_, err = newStarter(c, down).Start(context.Background(), Event{Type: TypeTerminate, EmployeeID: "E100001"})
	require.Error(t, err)
	assert.False(t, IsInvalid(err))
	assert.Contains(t, err.Error(), "cannot tell whether E100001 is known (no onboarding run; connection refused)")
	assertNothingStarted(t, c)

	// And so is the server's.
	c = &mocks.Client{}
	c.On("DescribeWorkflow", mock.Anything, "onboarding-E100001", "").Return(nil, serviceerror.NewUnavailable("down"))
	_, err = newStarter(c, fakePeople{}).Start(context.Background(), Event{Type: TypeTerminate, EmployeeID: "E100001"})
	require.Error(t, err)
	assert.False(t, IsInvalid(err))
	assertNothingStarted(t, c)
}

func TestStartMoveQueuesAndFindsRepeats(t *testing.T) {
	p := person("E100002")
	id := workflows.MoverID("E100002", workflows.MoverChangeKey(*p))
	setup := func(isNew bool, mover *client.WorkflowExecutionDescription, moverErr error) (*mocks.Client, *workflows.MoveSubmission) {
		c := &mocks.Client{}
		c.On("DescribeWorkflow", mock.Anything, "offboarding-E100002", "").Return(nil, notFound())
		c.On("DescribeWorkflow", mock.Anything, id, "").Return(mover, moverErr)
		c.On("ListWorkflow", mock.Anything, mock.Anything).Return(&workflowservice.ListWorkflowExecutionsResponse{}, nil)
		c.On("NewWithStartWorkflowOperation", mock.Anything, mock.Anything, mock.Anything).Return(nil)
		var sub workflows.MoveSubmission
		h := &mocks.WorkflowUpdateHandle{}
		h.On("Get", mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
			*a.Get(1).(*workflows.MoveReceipt) = workflows.MoveReceipt{WorkflowID: id, New: isNew}
		}).Return(nil)
		c.On("UpdateWithStartWorkflow", mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
			o := a.Get(1).(client.UpdateWithStartWorkflowOptions)
			sub = o.UpdateOptions.Args[0].(workflows.MoveSubmission)
		}).Return(h, nil)
		return c, &sub
	}

	c, sub := setup(true, nil, notFound())
	r, err := newStarter(c, fakePeople{known: map[string]bool{"E100002": true}}).Start(context.Background(), Event{Type: TypeMove, Person: p})
	require.NoError(t, err)
	assert.Equal(t, OutcomeQueued, r.Outcome)
	assert.Equal(t, id, r.WorkflowID)
	assert.Contains(t, r.Detail, "person-E100002")
	assert.False(t, sub.Known)
	assert.Equal(t, workflows.MoverChangeKey(*p), sub.Move.ChangeKey)

	// The same change again: the sequencer says it is not new, and the
	// mover runs.
	c, sub = setup(false, desc("run-m", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, workflows.StateProvisioning), nil)
	r, err = newStarter(c, fakePeople{known: map[string]bool{"E100002": true}}).Start(context.Background(), Event{Type: TypeMove, Person: p})
	require.NoError(t, err)
	assert.True(t, sub.Known, "a running mover is known")
	assert.Equal(t, OutcomeExisting, r.Outcome)
	assert.Equal(t, "already in progress (running, "+workflows.StateProvisioning+")", r.Detail)
	assert.Equal(t, "run-m", r.RunID)
}

func TestStartTerminate(t *testing.T) {
	known := fakePeople{known: map[string]bool{"E100002": true}}
	t.Run("scheduled", func(t *testing.T) {
		c := &mocks.Client{}
		var opts client.StartWorkflowOptions
		var in workflows.OffboardingInput
		c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
			opts = a.Get(1).(client.StartWorkflowOptions)
			in = a.Get(3).(workflows.OffboardingInput)
		}).Return(run("run-o"), nil)
		r, err := newStarter(c, known).Start(context.Background(), Event{Type: TypeTerminate, EmployeeID: "E100002", Effective: date("2026-06-30"), Reason: "contract"})
		require.NoError(t, err)
		assert.Equal(t, OutcomeStarted, r.Outcome)
		assert.Equal(t, time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), r.AccessEnds)
		assert.Equal(t, "offboarding-E100002", opts.ID)
		assert.Equal(t, "q-revocation", opts.TaskQueue, "offboardings have a worker of their own")
		assert.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY, opts.WorkflowIDReusePolicy)
		assert.Equal(t, PriorityRevocation, opts.Priority.PriorityKey, "revocation goes ahead of queued joiners")
		state, _ := opts.TypedSearchAttributes.GetKeyword(workflows.AttrLifecycleState)
		assert.Equal(t, workflows.StateScheduled, state)
		assert.Equal(t, workflows.OffboardingInput{EmployeeID: "E100002", LastDay: date("2026-06-30"), Reason: "contract"}, in)
	})
	t.Run("rescheduled", func(t *testing.T) {
		c := &mocks.Client{}
		c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).
			Return(nil, serviceerror.NewWorkflowExecutionAlreadyStarted("started", "", "run-o"))
		c.On("DescribeWorkflow", mock.Anything, "offboarding-E100002", "").
			Return(desc("run-o", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, workflows.StateScheduled), nil)
		c.On("SignalWorkflow", mock.Anything, "offboarding-E100002", "run-o", workflows.SignalReschedule,
			workflows.RescheduleInput{LastDay: date("2026-06-20")}).Return(nil)
		r, err := newStarter(c, known).Start(context.Background(), Event{Type: TypeTerminate, EmployeeID: "E100002", Effective: date("2026-06-20")})
		require.NoError(t, err)
		assert.Equal(t, OutcomeRescheduled, r.Outcome)
		assert.Equal(t, "last day 2026-06-20", r.Detail)
		assert.Equal(t, time.Date(2026, 6, 21, 0, 0, 0, 0, time.UTC), r.AccessEnds)
		c.AssertExpectations(t)
	})
	t.Run("scheduled moved to now", func(t *testing.T) {
		// A contractor's offboarding waits for the contract's end; HR
		// letting them go today must not leave them access until then.
		c := &mocks.Client{}
		c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).
			Return(nil, serviceerror.NewWorkflowExecutionAlreadyStarted("started", "", "run-o"))
		c.On("DescribeWorkflow", mock.Anything, "offboarding-E100002", "").
			Return(desc("run-o", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, workflows.StateScheduled), nil)
		c.On("SignalWorkflow", mock.Anything, "offboarding-E100002", "run-o", workflows.SignalReschedule,
			workflows.RescheduleInput{}).Return(nil)
		r, err := newStarter(c, known).Start(context.Background(), Event{Type: TypeTerminate, EmployeeID: "E100002"})
		require.NoError(t, err)
		assert.Equal(t, OutcomeRescheduled, r.Outcome)
		assert.Equal(t, "access ends now", r.Detail)
		c.AssertExpectations(t)
	})
	t.Run("already in progress", func(t *testing.T) {
		c := &mocks.Client{}
		c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).
			Return(nil, serviceerror.NewWorkflowExecutionAlreadyStarted("started", "", "run-o"))
		c.On("DescribeWorkflow", mock.Anything, "offboarding-E100002", "").
			Return(desc("run-o", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, workflows.StateRetention), nil)
		r, err := newStarter(c, known).Start(context.Background(), Event{Type: TypeTerminate, EmployeeID: "E100002"})
		require.NoError(t, err)
		assert.Equal(t, OutcomeExisting, r.Outcome)
		assert.Equal(t, "already in progress (retention)", r.Detail)
		c.AssertNotCalled(t, "SignalWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything)
	})
}

func TestStartRequestAccess(t *testing.T) {
	c := &mocks.Client{}
	var opts client.StartWorkflowOptions
	var in workflows.TemporaryAccessInput
	c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		opts = a.Get(1).(client.StartWorkflowOptions)
		in = a.Get(3).(workflows.TemporaryAccessInput)
	}).Return(run("run-a"), nil).Once()
	s := newStarter(c, fakePeople{known: map[string]bool{"E100002": true}})
	e := Event{Type: TypeRequestAccess, EmployeeID: "E100002", Entitlement: "postgres/prod_admin", Duration: "1d", Justification: "incident 42", RequestedBy: "E100008"}
	r, err := s.Start(context.Background(), e)
	require.NoError(t, err)
	assert.Equal(t, "access-E100002-postgres-prod_admin", opts.ID)
	assert.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE, opts.WorkflowIDReusePolicy)
	assert.Equal(t, workflows.TemporaryAccessInput{EmployeeID: "E100002", Application: "postgres", Entitlement: "prod_admin",
		Duration: 24 * time.Hour, RequestedBy: "E100008", Justification: "incident 42"}, in)
	assert.Equal(t, "access-E100002-postgres-prod_admin/postgres/prod_admin", r.RequestID)
	assert.Equal(t, OutcomeStarted, r.Outcome)

	c.On("ExecuteWorkflow", mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Return(nil, serviceerror.NewWorkflowExecutionAlreadyStarted("started", "", "run-a"))
	r, err = s.Start(context.Background(), e)
	require.NoError(t, err)
	assert.Equal(t, OutcomeExisting, r.Outcome)
	assert.Equal(t, "run-a", r.RunID)
	assert.Equal(t, "already requested or held", r.Detail)
}
