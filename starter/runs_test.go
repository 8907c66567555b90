package main

import (
	"encoding/json"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/mocks"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/provisio-dev/provisio/internal/app"
)

func TestBuildRunsQuery(t *testing.T) {
	tests := []struct {
		name string
		f    runsFilter
		want string
		err  string
	}{
		{name: "no filter lists everything", f: runsFilter{}, want: ""},
		{name: "employee", f: runsFilter{employee: "E100001"}, want: "EmployeeId = 'E100001'"},
		{name: "event word", f: runsFilter{event: "leaver"}, want: "LifecycleEvent = 'leaver'"},
		{name: "temporary is temporary-access", f: runsFilter{event: "temporary"}, want: "LifecycleEvent = 'temporary-access'"},
		{name: "temporary-access as is", f: runsFilter{event: "temporary-access"}, want: "LifecycleEvent = 'temporary-access'"},
		{name: "state", f: runsFilter{state: "waiting-approval"}, want: "LifecycleState = 'waiting-approval'"},
		{name: "type", f: runsFilter{workflowType: "Offboarding"}, want: "WorkflowType = 'Offboarding'"},
		{name: "status as printed", f: runsFilter{status: "timed_out"}, want: "ExecutionStatus = 'TimedOut'"},
		{name: "status British", f: runsFilter{status: "Cancelled"}, want: "ExecutionStatus = 'Canceled'"},
		{name: "needs attention", f: runsFilter{needsAttention: true}, want: "NeedsAttention = true"},
		{
			name: "everything, in a fixed order",
			f: runsFilter{employee: "E100001", event: "joiner", state: "provisioning", workflowType: "Onboarding",
				status: "running", needsAttention: true},
			want: "EmployeeId = 'E100001' AND LifecycleEvent = 'joiner' AND LifecycleState = 'provisioning' AND " +
				"WorkflowType = 'Onboarding' AND ExecutionStatus = 'Running' AND NeedsAttention = true",
		},
		// Injection attempts: every one is refused before a query exists.
		{name: "quote in employee", f: runsFilter{employee: "E100001' OR EmployeeId != '"}, err: "--employee must be an employee ID"},
		{name: "lower-case employee", f: runsFilter{employee: "e100001"}, err: "--employee must be an employee ID"},
		{name: "quote in state", f: runsFilter{state: "completed' OR 'a'='a"}, err: "--state: want one of"},
		{name: "quote in event", f: runsFilter{event: "joiner'"}, err: "--event: want joiner, mover, leaver or temporary"},
		{name: "quote in type", f: runsFilter{workflowType: "Onboarding' OR WorkflowType = 'Mover"}, err: "--type: want one of"},
		{name: "quote in status", f: runsFilter{status: "Running' OR '1'='1"}, err: "--status: want running"},
		{name: "backslash in state", f: runsFilter{state: `completed\`}, err: "--state"},
		{name: "unknown state", f: runsFilter{state: "sleeping"}, err: "--state: want one of"},
		{name: "unknown type", f: runsFilter{workflowType: "onboarding"}, err: "--type: want one of Mover, Offboarding"},
		{name: "valid employee, bad event", f: runsFilter{employee: "E100001", event: "hire"}, err: "--event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := buildRunsQuery(tt.f)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestLifecycleStatesAreSafeLiterals(t *testing.T) {
	for _, s := range lifecycleStates() {
		assert.Regexp(t, `^[a-z][a-z-]*$`, s, "a state is used inside a quoted literal")
	}
}

// typeRecorder records the workflow type names a registration gives.
type typeRecorder struct {
	worker.WorkflowRegistry
	names []string
}

func (r *typeRecorder) RegisterWorkflow(w any) {
	// The SDK names a workflow after its function, without the package.
	name := runtime.FuncForPC(reflect.ValueOf(w).Pointer()).Name()
	r.names = append(r.names, name[strings.LastIndex(name, ".")+1:])
}

func TestWorkflowTypesAreTheRegisteredOnes(t *testing.T) {
	var r typeRecorder
	app.RegisterWorkflows(&r)
	slices.Sort(r.names)
	assert.Equal(t, r.names, workflowTypes(), "--type accepts exactly the registered workflow types")
}

func TestRunsRefusesBadInputBeforeDialing(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--employee", "E1' OR '1'='1"}, "--employee must be an employee ID"},
		{[]string{"--state", "x'"}, "--state: want one of"},
		{[]string{"--limit", "0"}, "--limit must be between 1 and 1000"},
		{[]string{"--limit", "1001"}, "--limit must be between 1 and 1000"},
		{[]string{"-o", "yaml"}, "--output: want table or json"},
		{[]string{"E100001"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err := runCmd(t, testCfg, nil, newRunsCmd, tt.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// searchAttrs encodes search attributes as the visibility API returns them.
func searchAttrs(t *testing.T, kv map[string]any) *commonpb.SearchAttributes {
	t.Helper()
	fields := map[string]*commonpb.Payload{}
	for k, v := range kv {
		p, err := converter.GetDefaultDataConverter().ToPayload(v)
		require.NoError(t, err)
		fields[k] = p
	}
	return &commonpb.SearchAttributes{IndexedFields: fields}
}

func execution(t *testing.T, wfID, runID, typ string, status enumspb.WorkflowExecutionStatus, started time.Time, closed *time.Time, sa map[string]any) *workflowpb.WorkflowExecutionInfo {
	e := &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: wfID, RunId: runID},
		Type:      &commonpb.WorkflowType{Name: typ}, Status: status,
		StartTime: timestamppb.New(started), SearchAttributes: searchAttrs(t, sa),
	}
	if closed != nil {
		e.CloseTime = timestamppb.New(*closed)
	}
	return e
}

func TestRunsListsRunsWithTheirLinks(t *testing.T) {
	closed := t0.Add(time.Hour)
	runs := []*workflowpb.WorkflowExecutionInfo{
		execution(t, "offboarding-E100001", "r2", "Offboarding", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, t0.Add(2*time.Hour), nil,
			map[string]any{"EmployeeId": "E100001", "LifecycleEvent": "leaver", "LifecycleState": "retention", "NeedsAttention": true,
				"ApplicationsTouched": []string{"ldap", "scim"}}),
		execution(t, "onboarding-E100001", "r1", "Onboarding", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, t0, &closed,
			map[string]any{"EmployeeId": "E100001", "LifecycleEvent": "joiner", "LifecycleState": "completed"}),
	}
	c := mocks.NewClient(t)
	c.On("Close").Return()
	c.On("ListWorkflow", mock.Anything, &workflowservice.ListWorkflowExecutionsRequest{
		Query: "EmployeeId = 'E100001'", PageSize: 51,
	}).Return(&workflowservice.ListWorkflowExecutionsResponse{Executions: runs}, nil)
	// --limit 1: two pages of one, the second only to learn more match.
	c.On("ListWorkflow", mock.Anything, &workflowservice.ListWorkflowExecutionsRequest{
		Query: "EmployeeId = 'E100001'", PageSize: 2,
	}).Return(&workflowservice.ListWorkflowExecutionsResponse{Executions: runs}, nil)
	c.On("ListWorkflow", mock.Anything, &workflowservice.ListWorkflowExecutionsRequest{
		Query: "LifecycleEvent = 'mover' AND NeedsAttention = true", PageSize: 51,
	}).Return(&workflowservice.ListWorkflowExecutionsResponse{}, nil)

	t.Run("table", func(t *testing.T) {
		out, _, err := runCmd(t, testCfg, c, newRunsCmd, "--employee", "E100001")
		require.NoError(t, err)
		assert.Regexp(t, `offboarding-E100001\s+Offboarding\s+E100001\s+leaver\s+retention\s+running\s+yes\s+.*http://ui/namespaces/default/workflows/offboarding-E100001/r2/history`, out)
		assert.Regexp(t, `onboarding-E100001\s+Onboarding\s+E100001\s+joiner\s+completed\s+completed\s+-\s+.*http://ui/namespaces/default/workflows/onboarding-E100001/r1/history`, out)
		assert.Contains(t, out, "2 run(s) (EmployeeId = 'E100001')")
		assert.NotContains(t, out, "More runs match")
	})
	t.Run("json", func(t *testing.T) {
		out, _, err := runCmd(t, testCfg, c, newRunsCmd, "--employee", "E100001", "-o", "json")
		require.NoError(t, err)
		var raw struct {
			Query     string           `json:"query"`
			Runs      []map[string]any `json:"runs"`
			Truncated bool             `json:"truncated"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &raw))
		assert.Equal(t, "EmployeeId = 'E100001'", raw.Query)
		assert.False(t, raw.Truncated)
		require.Len(t, raw.Runs, 2)
		assert.Equal(t, map[string]any{
			"workflowId": "offboarding-E100001", "runId": "r2", "type": "Offboarding", "status": "running",
			"employeeId": "E100001", "event": "leaver", "state": "retention", "needsAttention": true,
			"applicationsTouched": []any{"ldap", "scim"}, "started": "2026-11-25T11:00:00Z",
			"url": "http://ui/namespaces/default/workflows/offboarding-E100001/r2/history",
		}, raw.Runs[0])
		assert.Equal(t, "2026-11-25T10:00:00Z", raw.Runs[1]["closed"])
		assert.Equal(t, false, raw.Runs[1]["needsAttention"])
	})
	t.Run("limit cuts and says so", func(t *testing.T) {
		out, _, err := runCmd(t, testCfg, c, newRunsCmd, "--employee", "E100001", "--limit", "1", "-o", "json")
		require.NoError(t, err)
		var rep runsReport
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		assert.True(t, rep.Truncated)
		require.Len(t, rep.Runs, 1)
		assert.Equal(t, "offboarding-E100001", rep.Runs[0].WorkflowID)

		out, _, err = runCmd(t, testCfg, c, newRunsCmd, "--employee", "E100001", "--limit", "1")
		require.NoError(t, err)
		assert.Contains(t, out, "More runs match: narrow the filters or raise --limit.")
	})
	t.Run("nothing matches", func(t *testing.T) {
		out, _, err := runCmd(t, testCfg, c, newRunsCmd, "--event", "mover", "--needs-attention")
		require.NoError(t, err)
		assert.Equal(t, "No runs match (LifecycleEvent = 'mover' AND NeedsAttention = true).\n", out)
	})
}
