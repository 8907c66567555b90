package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/workflows"
)

// Bounds of `runs --limit`: one visibility page holds at most 1000 runs.
const (
	defaultRunsLimit = 50
	maxRunsLimit     = 1000
)

// runRow is one run in `runs` output (and the base of a run in `status`);
// its JSON fields are stable.
type runRow struct {
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	// Type is the workflow type: Onboarding, Offboarding, Mover,
	// TemporaryAccess or PersonEvents.
	Type string `json:"type"`
	// Status is the execution status, lower case: running, completed,
	// failed, canceled, terminated, continued_as_new, timed_out.
	Status     string `json:"status"`
	EmployeeID string `json:"employeeId,omitempty"`
	// Event is the LifecycleEvent search attribute: joiner, mover, leaver
	// or temporary-access.
	Event string `json:"event,omitempty"`
	// State is the LifecycleState search attribute: the run's current step.
	State               string     `json:"state,omitempty"`
	NeedsAttention      bool       `json:"needsAttention"`
	WaitingApprovers    []string   `json:"waitingApprovers,omitempty"`
	ApplicationsTouched []string   `json:"applicationsTouched,omitempty"`
	Started             time.Time  `json:"started"`
	Closed              *time.Time `json:"closed,omitempty"`
	// URL is the run in the Temporal UI.
	URL string `json:"url"`
}

// runsReport is `runs --output json`.
type runsReport struct {
	// Query is the visibility query that found the runs; the Temporal UI
	// takes it as is.
	Query string   `json:"query"`
	Runs  []runRow `json:"runs"`
	// Truncated is true when more runs match than --limit allowed.
	Truncated bool `json:"truncated"`
}

// runsFilter is what `runs` was asked for; every field is validated by
// buildRunsQuery before it reaches the query.
type runsFilter struct {
	employee, state, event, workflowType, status string
	needsAttention                               bool
}

func newRunsCmd(opts *rootOptions) *cobra.Command {
	var f runsFilter
	var limit int
	var output string
	cmd := &cobra.Command{
		Use:   "runs [--employee ID] [--state STATE] [--event EVENT] [--type TYPE] [--status STATUS] [--needs-attention]",
		Short: "List runs by person, lifecycle event, state or status",
		Long: `List runs with a visibility query on the search attributes the workflows
keep (EmployeeId, LifecycleEvent, LifecycleState, NeedsAttention) and on the
run's type and execution status. Filters combine with AND; without any, the
most recent runs are listed. Each run is printed with its Temporal UI link;
the query itself is printed too and can be pasted into the UI.

  --event   joiner, mover, leaver or temporary (temporary-access)
  --type    Onboarding, Offboarding, Mover, TemporaryAccess, PersonEvents
  --status  running, completed, failed, canceled, terminated,
            continued-as-new, timed-out
  --state   a lifecycle state, e.g. provisioning, waiting-approval,
            waiting-start-date, scheduled, retention, completed, failed`,
		Example: `  starter runs --employee E100001
  starter runs --event leaver --state scheduled
  starter runs --needs-attention -o json
  starter runs --type Onboarding --status failed --limit 200`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if limit < 1 || limit > maxRunsLimit {
				return fmt.Errorf("--limit must be between 1 and %d, got %d", maxRunsLimit, limit)
			}
			query, err := buildRunsQuery(f)
			if err != nil {
				return err
			}
			rep, err := listRuns(cmd.Context(), opts, query, limit)
			if err != nil {
				return err
			}
			if output == "json" {
				return opts.printJSON(rep)
			}
			printRuns(opts.out, rep)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.employee, "employee", "", "employee ID (E followed by 6 digits)")
	fl.StringVar(&f.state, "state", "", "lifecycle state, e.g. provisioning or waiting-approval")
	fl.StringVar(&f.event, "event", "", "lifecycle event: joiner, mover, leaver or temporary")
	fl.StringVar(&f.workflowType, "type", "", "workflow type, e.g. Onboarding")
	fl.StringVar(&f.status, "status", "", "execution status, e.g. running or failed")
	fl.BoolVar(&f.needsAttention, "needs-attention", false, "only runs an operator should look at")
	fl.IntVar(&limit, "limit", defaultRunsLimit, fmt.Sprintf("at most this many runs (1-%d)", maxRunsLimit))
	outputFlag(cmd, &output)
	return cmd
}

// buildRunsQuery turns f into a visibility query. Each value is checked
// against the known values (or the employee ID format) first, so nothing a
// user types reaches the query unchecked: no quote can end a literal early.
func buildRunsQuery(f runsFilter) (string, error) {
	var clauses []string
	add := func(name, value string) {
		clauses = append(clauses, fmt.Sprintf("%s = '%s'", name, value))
	}
	if f.employee != "" {
		if !hr.ValidEmployeeID(f.employee) {
			return "", fmt.Errorf("--employee must be an employee ID (E followed by 6 digits), got %q", clip(f.employee))
		}
		add(workflows.AttrEmployeeID.GetName(), f.employee)
	}
	if f.event != "" {
		ev, ok := lifecycleEvent(f.event)
		if !ok {
			return "", fmt.Errorf("--event: want joiner, mover, leaver or temporary, got %q", clip(f.event))
		}
		add(workflows.AttrLifecycleEvent.GetName(), ev)
	}
	if f.state != "" {
		if !slices.Contains(lifecycleStates(), f.state) {
			return "", fmt.Errorf("--state: want one of %s, got %q", strings.Join(lifecycleStates(), ", "), clip(f.state))
		}
		add(workflows.AttrLifecycleState.GetName(), f.state)
	}
	if f.workflowType != "" {
		if !slices.Contains(workflowTypes(), f.workflowType) {
			return "", fmt.Errorf("--type: want one of %s, got %q", strings.Join(workflowTypes(), ", "), clip(f.workflowType))
		}
		add("WorkflowType", f.workflowType)
	}
	if f.status != "" {
		st, ok := executionStatus(f.status)
		if !ok {
			return "", fmt.Errorf("--status: want running, completed, failed, canceled, terminated, continued-as-new or timed-out, got %q", clip(f.status))
		}
		add("ExecutionStatus", st)
	}
	if f.needsAttention {
		clauses = append(clauses, workflows.AttrNeedsAttention.GetName()+" = true")
	}
	return strings.Join(clauses, " AND "), nil
}

// lifecycleEvent maps an --event word to the LifecycleEvent value.
func lifecycleEvent(s string) (string, bool) {
	switch s {
	case "joiner":
		return workflows.EventJoiner, true
	case "mover":
		return workflows.EventMover, true
	case "leaver":
		return workflows.EventLeaver, true
	case "temporary", workflows.EventTemporaryAccess:
		return workflows.EventTemporaryAccess, true
	}
	return "", false
}

// lifecycleStates are the LifecycleState values the workflows set, sorted.
func lifecycleStates() []string {
	s := []string{
		workflows.StatePlanning, workflows.StateProvisioning, workflows.StateWaitingStart,
		workflows.StateEnabling, workflows.StateCompensating, workflows.StateCompleted,
		workflows.StateFailed, workflows.StateCancelled, workflows.StateScheduled,
		workflows.StateRetracted, workflows.StateDisabling, workflows.StateRevoking,
		workflows.StateRetention, workflows.StateDeleting, workflows.StateWaitingTurn,
		workflows.StateWaitingApproval, workflows.StateActive, workflows.StateReminderSent,
		workflows.StateExpired, workflows.StateRevoked, workflows.StateRejected,
		workflows.StateScanning, workflows.StateFixing,
	}
	slices.Sort(s)
	return slices.Compact(s)
}

// workflowTypes are the workflow types the worker registers (the names of
// the workflow functions; a test checks the list against app.RegisterWorkflows).
func workflowTypes() []string {
	return []string{"Mover", "Offboarding", "Onboarding", "PersonEvents", "Reconcile", "TemporaryAccess"}
}

// executionStatus maps a --status word (as `runs` prints it, or with
// dashes) to the ExecutionStatus value of the visibility query.
func executionStatus(s string) (string, bool) {
	switch strings.ReplaceAll(strings.ToLower(s), "_", "-") {
	case "running":
		return "Running", true
	case "completed":
		return "Completed", true
	case "failed":
		return "Failed", true
	case "canceled", "cancelled":
		return "Canceled", true
	case "terminated":
		return "Terminated", true
	case "continued-as-new":
		return "ContinuedAsNew", true
	case "timed-out":
		return "TimedOut", true
	}
	return "", false
}

// clip shortens what a user typed before it is echoed in an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// listRuns pages through the runs query matches, at most limit of them.
func listRuns(ctx context.Context, opts *rootOptions, query string, limit int) (runsReport, error) {
	c, cfg, err := opts.client(ctx)
	if err != nil {
		return runsReport{}, err
	}
	defer c.Close()
	rep := runsReport{Query: query, Runs: []runRow{}}
	var token []byte
	for {
		// One more than wanted tells whether the limit cut the list.
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: query, PageSize: int32(limit + 1 - len(rep.Runs)), NextPageToken: token,
		})
		if err != nil {
			return rep, fmt.Errorf("list runs (query %q): %w", query, err)
		}
		for _, e := range resp.GetExecutions() {
			rep.Runs = append(rep.Runs, rowFromExecution(cfg, e))
		}
		if token = resp.GetNextPageToken(); len(token) == 0 || len(rep.Runs) > limit {
			break
		}
	}
	if len(rep.Runs) > limit {
		rep.Runs, rep.Truncated = rep.Runs[:limit], true
	}
	return rep, nil
}

// rowFromExecution reads one visibility record.
func rowFromExecution(cfg config.Config, e *workflowpb.WorkflowExecutionInfo) runRow {
	sa := e.GetSearchAttributes()
	r := runRow{
		WorkflowID:          e.GetExecution().GetWorkflowId(),
		RunID:               e.GetExecution().GetRunId(),
		Type:                e.GetType().GetName(),
		Status:              statusName(e.GetStatus()),
		EmployeeID:          keywordAttr(sa, workflows.AttrEmployeeID.GetName()),
		Event:               keywordAttr(sa, workflows.AttrLifecycleEvent.GetName()),
		State:               keywordAttr(sa, workflows.AttrLifecycleState.GetName()),
		NeedsAttention:      boolAttr(sa, workflows.AttrNeedsAttention.GetName()),
		WaitingApprovers:    keywordListAttr(sa, workflows.AttrWaitingApprovers.GetName()),
		ApplicationsTouched: keywordListAttr(sa, workflows.AttrApplicationsTouched.GetName()),
		Started:             e.GetStartTime().AsTime(),
		URL:                 cfg.RunURL(e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()),
	}
	if e.GetCloseTime() != nil {
		t := e.GetCloseTime().AsTime()
		r.Closed = &t
	}
	return r
}

func boolAttr(sa *commonpb.SearchAttributes, name string) bool {
	p, ok := sa.GetIndexedFields()[name]
	if !ok {
		return false
	}
	var b bool
	if err := converter.GetDefaultDataConverter().FromPayload(p, &b); err != nil {
		return false
	}
	return b
}

func keywordListAttr(sa *commonpb.SearchAttributes, name string) []string {
	p, ok := sa.GetIndexedFields()[name]
	if !ok {
		return nil
	}
	var s []string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		return nil
	}
	if len(s) == 0 {
		return nil
	}
	return s
}

func printRuns(w io.Writer, rep runsReport) {
	query := rep.Query
	if query == "" {
		query = "all runs"
	}
	if len(rep.Runs) == 0 {
		fmt.Fprintf(w, "No runs match (%s).\n", query)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKFLOW\tTYPE\tEMPLOYEE\tEVENT\tSTATE\tSTATUS\tATTENTION\tSTARTED\tCLOSED\tLINK")
	for _, r := range rep.Runs {
		attention := "-"
		if r.NeedsAttention {
			attention = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.WorkflowID, r.Type, orDash(r.EmployeeID),
			orDash(r.Event), orDash(r.State), r.Status, attention, localTime(r.Started), closedTime(r.Closed), r.URL)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\n%d run(s) (%s)\n", len(rep.Runs), query)
	if rep.Truncated {
		fmt.Fprintln(w, "More runs match: narrow the filters or raise --limit.")
	}
}

func closedTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return localTime(*t)
}
