package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/workflows"
)

// TestTwoMovesBackToBackRunOneAfterTheOther sends two different role
// changes of one person within a moment of each other. Visibility cannot
// order them that fast; the person's sequencer does: the second mover
// starts only after the first closed, and the person ends in the second
// role.
func TestTwoMovesBackToBackRunOneAfterTheOther(t *testing.T) {
	cfg := testConfig(t)
	c, deps := startWorker(t, cfg)
	bin := buildStarter(t)
	employee := newEmployeeID(t)

	person := newTestPerson(employee, "Se", "Quence")
	person.StartDate = hr.Date{Time: time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -30)}
	out, err := runCLI(t, bin, cfg, "hire", "-f", writePerson(t, person), "--wait")
	require.NoError(t, err, out)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var hired workflows.OnboardingResult
	require.NoError(t, c.GetWorkflow(ctx, workflows.OnboardingID(employee), "").Get(ctx, &hired))
	username := hired.Username
	t.Cleanup(func() {
		for _, conn := range deps.Activities.Connectors {
			_, _ = conn.DeleteAccount(context.Background(), connectors.AccountRequest{Username: username})
		}
		_ = c.TerminateWorkflow(context.Background(), workflows.PersonEventsID(employee), "", "test cleanup")
	})

	first := person
	first.Department, first.Title = "Sales", "Account Executive"
	second := first
	second.Title = "Senior Account Executive"
	firstID := workflows.MoverID(employee, workflows.MoverChangeKey(first))
	secondID := workflows.MoverID(employee, workflows.MoverChangeKey(second))
	firstFile, secondFile := writePerson(t, first), writePerson(t, second)

	out, err = runCLI(t, bin, cfg, "move", "-f", firstFile)
	require.NoError(t, err, out)
	assert.Contains(t, out, "workflow: "+firstID)
	out, err = runCLI(t, bin, cfg, "move", "-f", secondFile)
	require.NoError(t, err, out)
	assert.Contains(t, out, "workflow: "+secondID)

	// The second mover's result is the last word on the person.
	require.Eventually(t, func() bool {
		_, err := c.DescribeWorkflow(ctx, secondID, "")
		return err == nil
	}, 2*time.Minute, 200*time.Millisecond, "the second mover starts once the first closed")
	var res workflows.MoverResult
	require.NoError(t, c.GetWorkflow(ctx, secondID, "").Get(ctx, &res))

	d1, err := c.DescribeWorkflow(ctx, firstID, "")
	require.NoError(t, err)
	d2, err := c.DescribeWorkflow(ctx, secondID, "")
	require.NoError(t, err)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, d1.Status)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, d2.Status)
	require.NotNil(t, d1.WorkflowCloseTime)
	require.NotNil(t, d2.WorkflowStartTime)
	assert.False(t, d2.WorkflowStartTime.Before(*d1.WorkflowCloseTime),
		"second mover started at %s, before the first closed at %s", d2.WorkflowStartTime, d1.WorkflowCloseTime)
	// The sequencer waits idle now; its history so far (two moves, one
	// after the other) must keep replaying on later code.
	recordHistory(t, c, workflows.PersonEventsID(employee), "", "person-events-v1")
}
