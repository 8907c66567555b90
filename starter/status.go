package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/workflows"
)

// runInfo is one run in `status` output; its JSON fields are stable.
type runInfo struct {
	WorkflowID string     `json:"workflowId"`
	RunID      string     `json:"runId"`
	Type       string     `json:"type"`
	Status     string     `json:"status"`
	State      string     `json:"state,omitempty"`
	Started    time.Time  `json:"started"`
	Closed     *time.Time `json:"closed,omitempty"`
	URL        string     `json:"url"`
	// Onboarding is the state of an onboarding run, when the worker answers.
	Onboarding *workflows.OnboardingState `json:"onboarding,omitempty"`
	// Offboarding is the state of an offboarding run, when the worker answers.
	Offboarding *workflows.OffboardingState `json:"offboarding,omitempty"`
}

// statusReport is `status --output json`.
type statusReport struct {
	EmployeeID string    `json:"employeeId"`
	Runs       []runInfo `json:"runs"`
}

func newStatusCmd(opts *rootOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status EMPLOYEE_ID",
		Short: "Show a person's runs, their state and accounts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			id := args[0]
			if !hr.ValidEmployeeID(id) {
				return fmt.Errorf("employee ID must be E followed by 6 digits, got %q", id)
			}
			rep, err := loadStatus(cmd, opts, id)
			if err != nil {
				return err
			}
			if output == "json" {
				return opts.printJSON(rep)
			}
			printStatus(opts, rep)
			return nil
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func loadStatus(cmd *cobra.Command, opts *rootOptions, employeeID string) (statusReport, error) {
	ctx := cmd.Context()
	c, cfg, err := opts.client(ctx)
	if err != nil {
		return statusReport{}, err
	}
	defer c.Close()
	rep := statusReport{EmployeeID: employeeID, Runs: []runInfo{}}
	// employeeID is validated (E + 6 digits), so it is safe inside the query.
	query := fmt.Sprintf("%s = '%s'", workflows.AttrEmployeeID.GetName(), employeeID)
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
		if err != nil {
			return rep, fmt.Errorf("list runs of %s: %w", employeeID, err)
		}
		for _, e := range resp.GetExecutions() {
			ri := runInfo{
				WorkflowID: e.GetExecution().GetWorkflowId(),
				RunID:      e.GetExecution().GetRunId(),
				Type:       e.GetType().GetName(),
				Status:     statusName(e.GetStatus()),
				State:      keywordAttr(e.GetSearchAttributes(), workflows.AttrLifecycleState.GetName()),
				Started:    e.GetStartTime().AsTime(),
				URL:        cfg.RunURL(e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()),
			}
			if e.GetCloseTime() != nil {
				t := e.GetCloseTime().AsTime()
				ri.Closed = &t
			}
			// The state query needs a worker; without one the run is still
			// listed, just without its accounts.
			switch ri.Type {
			case "Onboarding":
				ri.Onboarding = queryState[workflows.OnboardingState](ctx, c, ri)
			case "Offboarding":
				ri.Offboarding = queryState[workflows.OffboardingState](ctx, c, ri)
			}
			rep.Runs = append(rep.Runs, ri)
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	if len(rep.Runs) == 0 {
		return rep, fmt.Errorf("no runs found for %s (never hired through this system, or not yet visible: retry in a second)", employeeID)
	}
	return rep, nil
}

func queryState[T any](ctx context.Context, c client.Client, ri runInfo) *T {
	v, err := c.QueryWorkflow(ctx, ri.WorkflowID, ri.RunID, workflows.QueryState)
	if err != nil {
		return nil
	}
	var st T
	if v.Get(&st) != nil {
		return nil
	}
	return &st
}

func keywordAttr(sa *commonpb.SearchAttributes, name string) string {
	p, ok := sa.GetIndexedFields()[name]
	if !ok {
		return ""
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		return ""
	}
	return s
}

func printStatus(opts *rootOptions, rep statusReport) {
	fmt.Fprintf(opts.out, "Employee %s\n\n", rep.EmployeeID)
	tw := tabwriter.NewWriter(opts.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKFLOW\tTYPE\tSTATUS\tSTATE\tSTARTED\tCLOSED")
	for _, r := range rep.Runs {
		closed := "-"
		if r.Closed != nil {
			closed = r.Closed.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.WorkflowID, r.Type, r.Status, orDash(r.State),
			r.Started.Local().Format(time.DateTime), closed)
	}
	_ = tw.Flush()
	for _, r := range rep.Runs {
		fmt.Fprintf(opts.out, "\n%s: %s\n", r.WorkflowID, r.URL)
		if st := r.Offboarding; st != nil {
			printOffboarding(opts, st)
			continue
		}
		if r.Onboarding == nil {
			continue
		}
		st := r.Onboarding
		if st.Username != "" {
			fmt.Fprintf(opts.out, "  username: %s\n", st.Username)
		}
		for _, a := range st.Accounts {
			fmt.Fprintf(opts.out, "  account in %-10s %s %v\n", a.Application, a.Username, a.Entitlements)
		}
		if st.Failure != "" {
			fmt.Fprintf(opts.out, "  failure: %s\n", st.Failure)
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printOffboarding(opts *rootOptions, st *workflows.OffboardingState) {
	if !st.AccessEndsAt.IsZero() {
		fmt.Fprintf(opts.out, "  access ends: %s\n", st.AccessEndsAt.Local().Format(time.DateTime))
	}
	for _, a := range st.Accounts {
		state := "enabled"
		switch {
		case a.Deleted:
			state = "deleted"
		case a.Disabled:
			state = "disabled"
		}
		line := fmt.Sprintf("  account in %-10s %s", a.Application, state)
		if len(a.Revoked) > 0 {
			line += fmt.Sprintf(", revoked %v", a.Revoked)
		}
		if !a.Deleted && !a.DeleteAfter.IsZero() {
			line += ", deleted after " + a.DeleteAfter.Local().Format(time.DateOnly)
		}
		fmt.Fprintln(opts.out, line)
	}
	for _, p := range st.Problems {
		fmt.Fprintf(opts.out, "  needs attention: %s %s: %s\n", p.Application, p.Step, p.Error)
	}
	if st.Failure != "" {
		fmt.Fprintf(opts.out, "  failure: %s\n", st.Failure)
	}
}
