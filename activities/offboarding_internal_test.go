package activities

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"
)

type fakeDescriber struct {
	desc *client.WorkflowExecutionDescription
	err  error
}

func (f fakeDescriber) DescribeWorkflow(context.Context, string, string) (*client.WorkflowExecutionDescription, error) {
	return f.desc, f.err
}

func described(status enumspb.WorkflowExecutionStatus, closed time.Time) *client.WorkflowExecutionDescription {
	d := &client.WorkflowExecutionDescription{}
	d.WorkflowExecution = workflow.Execution{ID: "onboarding-E100001", RunID: "run-1"}
	d.Status = status
	if !closed.IsZero() {
		d.WorkflowCloseTime = &closed
	}
	return d
}

func TestDescribeRun(t *testing.T) {
	closed := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		d        fakeDescriber
		want     AwaitWorkflowClosedResult
		wantRun  string
		wantKind string
	}{
		{"never started", fakeDescriber{err: serviceerror.NewNotFound("no such workflow")},
			AwaitWorkflowClosedResult{Closed: true}, "", ""},
		{"running", fakeDescriber{desc: described(enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, time.Time{})},
			AwaitWorkflowClosedResult{Found: true, Status: "running"}, "run-1", ""},
		{"cancelled", fakeDescriber{desc: described(enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, closed)},
			AwaitWorkflowClosedResult{Found: true, Closed: true, Status: "canceled", CloseTime: closed}, "run-1", ""},
		{"completed", fakeDescriber{desc: described(enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, closed)},
			AwaitWorkflowClosedResult{Found: true, Closed: true, Status: "completed", CloseTime: closed}, "run-1", ""},
		{"server down is retryable", fakeDescriber{err: errors.New("connection refused")},
			AwaitWorkflowClosedResult{}, "", "Unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, run, err := describeRun(context.Background(), tt.d, "onboarding-E100001")
			if tt.wantKind != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantKind)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.wantRun, run)
		})
	}
}
