package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/workflows"
)

// decisionTimeout bounds how long approve/reject wait for the worker to
// apply a decision: without a worker the update would wait forever.
const decisionTimeout = 30 * time.Second

// pendingRequest is one request waiting for the approver, in `pending`
// output; its JSON fields are stable.
type pendingRequest struct {
	RequestID   string `json:"requestId"`
	WorkflowID  string `json:"workflowId"`
	EmployeeID  string `json:"employeeId"`
	Application string `json:"application"`
	Entitlement string `json:"entitlement"`
	// Step is 1-based, of Steps.
	Step  int    `json:"step"`
	Steps int    `json:"steps"`
	Kind  string `json:"kind"`
	// As is "approver", or "escalation" when the approver is asked because
	// the original approver did not answer in time.
	As           string    `json:"as"`
	WaitingSince time.Time `json:"waitingSince"`
	EscalatesAt  time.Time `json:"escalatesAt,omitzero"`
	ExpiresAt    time.Time `json:"expiresAt"`
	Fallback     string    `json:"fallback,omitempty"`
}

// pendingReport is `pending --output json`.
type pendingReport struct {
	Approver string           `json:"approver"`
	Requests []pendingRequest `json:"requests"`
}

func newPendingCmd(opts *rootOptions) *cobra.Command {
	var approver, output string
	cmd := &cobra.Command{
		Use:   "pending --approver EMPLOYEE_ID",
		Short: "List the approval requests waiting for an approver",
		Long: `List every approval request that the given approver may decide now:
as the step's approver, or as the escalation approver once the original
approver did not answer in time. Decide with "starter approve" or
"starter reject" and the request ID shown.`,
		Example: `  starter pending --approver E100008
  starter pending --approver E100008 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if !hr.ValidEmployeeID(approver) {
				return fmt.Errorf("--approver must be an employee ID (E followed by 6 digits), got %q", approver)
			}
			rep, err := loadPending(cmd.Context(), opts, approver)
			if err != nil {
				return err
			}
			if output == "json" {
				return opts.printJSON(rep)
			}
			printPending(opts, rep)
			return nil
		},
	}
	cmd.Flags().StringVar(&approver, "approver", "", "employee ID of the approver (required)")
	_ = cmd.MarkFlagRequired("approver")
	outputFlag(cmd, &output)
	return cmd
}

// loadPending finds the runs waiting for approver with one visibility query
// on the WaitingApprovers search attribute, then asks each for its
// requests, keeping those the approver may decide now.
func loadPending(ctx context.Context, opts *rootOptions, approver string) (pendingReport, error) {
	c, _, err := opts.client(ctx)
	if err != nil {
		return pendingReport{}, err
	}
	defer c.Close()
	rep := pendingReport{Approver: approver, Requests: []pendingRequest{}}
	// approver is validated (E + 6 digits), so it is safe inside the query.
	query := fmt.Sprintf("%s = '%s' AND ExecutionStatus = 'Running'", workflows.AttrWaitingApprovers.GetName(), approver)
	var token []byte
	var failed []string
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
		if err != nil {
			return rep, fmt.Errorf("list runs waiting for %s: %w", approver, err)
		}
		for _, e := range resp.GetExecutions() {
			wfID, runID := e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()
			v, err := c.QueryWorkflow(ctx, wfID, runID, workflows.QueryApprovals)
			var st workflows.ApprovalsState
			if err == nil {
				err = v.Get(&st)
			}
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", wfID, err))
				continue
			}
			for _, r := range st.Requests {
				if p, ok := pendingFor(r, wfID, approver); ok {
					rep.Requests = append(rep.Requests, p)
				}
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	for _, f := range failed {
		fmt.Fprintf(opts.errOut, "warning: cannot read the requests of %s\n", f)
	}
	if len(failed) > 0 && len(rep.Requests) == 0 {
		return rep, fmt.Errorf("%d run(s) wait for %s but none answered: is the worker running?", len(failed), approver)
	}
	slices.SortFunc(rep.Requests, func(a, b pendingRequest) int {
		if c := a.WaitingSince.Compare(b.WaitingSince); c != 0 {
			return c
		}
		return strings.Compare(a.RequestID, b.RequestID)
	})
	return rep, nil
}

// pendingFor reports whether approver may decide r now, and how.
func pendingFor(r workflows.ApprovalRequest, wfID, approver string) (pendingRequest, bool) {
	if !slices.Contains(r.WaitingFor(), approver) {
		return pendingRequest{}, false
	}
	s := r.Current()
	as := "approver"
	if s.ApproverID != approver {
		as = "escalation"
	}
	return pendingRequest{
		RequestID: r.ID, WorkflowID: wfID, EmployeeID: r.EmployeeID,
		Application: r.Application, Entitlement: r.Entitlement,
		Step: r.Step + 1, Steps: len(r.Steps), Kind: s.Kind, As: as,
		WaitingSince: s.StartedAt, EscalatesAt: s.EscalatesAt, ExpiresAt: s.ExpiresAt, Fallback: s.Fallback,
	}, true
}

func printPending(opts *rootOptions, rep pendingReport) {
	if len(rep.Requests) == 0 {
		fmt.Fprintf(opts.out, "Nothing waits for %s.\n", rep.Approver)
		return
	}
	fmt.Fprintf(opts.out, "Waiting for %s: %d request(s)\n\n", rep.Approver, len(rep.Requests))
	tw := tabwriter.NewWriter(opts.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUEST\tPERSON\tACCESS\tSTEP\tWAITING SINCE\tESCALATES\tEXPIRES")
	for _, p := range rep.Requests {
		stepDesc := fmt.Sprintf("%d/%d %s", p.Step, p.Steps, p.Kind)
		if p.As == "escalation" {
			stepDesc += " (escalated to you)"
		}
		escalates := "-"
		if !p.EscalatesAt.IsZero() {
			escalates = localTime(p.EscalatesAt)
			if p.As == "escalation" || !p.EscalatesAt.After(time.Now()) {
				escalates = "escalated"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\t%s\t%s\n", p.RequestID, p.EmployeeID, p.Application, p.Entitlement,
			stepDesc, localTime(p.WaitingSince), escalates, localTime(p.ExpiresAt))
	}
	_ = tw.Flush()
	fmt.Fprintf(opts.out, "\nDecide with: starter approve REQUEST --as %s   (or: starter reject REQUEST --as %s --comment WHY)\n",
		rep.Approver, rep.Approver)
}

func localTime(t time.Time) string { return t.Local().Format(time.DateTime) }

func newApproveCmd(opts *rootOptions) *cobra.Command { return newDecideCmd(opts, true) }

func newRejectCmd(opts *rootOptions) *cobra.Command { return newDecideCmd(opts, false) }

// newDecideCmd builds approve (approve=true) or reject.
func newDecideCmd(opts *rootOptions, approve bool) *cobra.Command {
	var as, comment, output string
	verb, short := "approve", "Approve an access request as its approver"
	if !approve {
		verb, short = "reject", "Reject an access request as its approver"
	}
	cmd := &cobra.Command{
		Use:   verb + " REQUEST_ID --as EMPLOYEE_ID",
		Short: short,
		Long: `Send one approver's decision to the run that holds the request. The
request ID (see "starter pending") names the run, so no lookup is needed.

Only the approver the request waits for (or, once escalated, the approver's
manager) may decide; anyone else, an unknown request or one already decided
is refused with the reason and changes nothing. The command exits non-zero
when the decision is refused.`,
		Example: fmt.Sprintf(`  starter %[1]s onboarding-E100091/scim/finance-admins --as E100008
  starter %[1]s onboarding-E100091/scim/finance-admins --as E100008 --comment "see ticket 4711"`, verb),
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			in := workflows.DecideInput{RequestID: args[0], ApproverID: as, Approve: approve, Comment: comment}
			res, err := sendDecision(cmd.Context(), opts, in)
			if err != nil {
				return err
			}
			if output == "json" {
				return opts.printJSON(res)
			}
			printDecision(opts, in, res)
			return nil
		},
	}
	cmd.Flags().StringVar(&as, "as", "", "employee ID of the approver deciding (required)")
	cmd.Flags().StringVar(&comment, "comment", "", "why, kept with the decision")
	_ = cmd.MarkFlagRequired("as")
	outputFlag(cmd, &output)
	return cmd
}

// sendDecision sends the decide Update to the run named in the request ID
// and waits for its result. The workflow's validator refuses a wrong
// decision before anything is recorded; its message is returned as is.
func sendDecision(ctx context.Context, opts *rootOptions, in workflows.DecideInput) (workflows.DecideResult, error) {
	wfID, _, _, err := workflows.ParseApprovalRequestID(in.RequestID)
	if err != nil {
		return workflows.DecideResult{}, err
	}
	if !hr.ValidEmployeeID(in.ApproverID) {
		return workflows.DecideResult{}, fmt.Errorf("--as must be an employee ID (E followed by 6 digits), got %q", in.ApproverID)
	}
	if len(in.Comment) > workflows.MaxCommentLen {
		return workflows.DecideResult{}, fmt.Errorf("--comment has %d bytes; at most %d are kept", len(in.Comment), workflows.MaxCommentLen)
	}
	c, _, err := opts.client(ctx)
	if err != nil {
		return workflows.DecideResult{}, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, decisionTimeout)
	defer cancel()
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   wfID,
		UpdateName:   workflows.UpdateDecide,
		Args:         []any{in},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var res workflows.DecideResult
	if err == nil {
		err = h.Get(ctx, &res)
	}
	if err != nil {
		return res, decisionError(in, wfID, err)
	}
	return res, nil
}

// decisionError turns what the server or the validator said into one
// sentence for the approver.
func decisionError(in workflows.DecideInput, wfID string, err error) error {
	verb := "approval"
	if !in.Approve {
		verb = "rejection"
	}
	var notFound *serviceerror.NotFound
	var ae *temporal.ApplicationError
	switch {
	case errors.As(err, &notFound) && strings.Contains(notFound.Message, "already completed"):
		return fmt.Errorf("%s of %s refused: its run %s has ended, so every request in it is closed (see starter status)",
			verb, in.RequestID, wfID)
	case errors.As(err, &notFound):
		return fmt.Errorf("%s of %s refused: no run %s (the request ID is wrong, or the person was never hired): %s",
			verb, in.RequestID, wfID, notFound.Message)
	case errors.As(err, &ae):
		return fmt.Errorf("%s refused: %s", verb, ae.Message())
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s of %s: no answer within %s: is the worker running?", verb, in.RequestID, decisionTimeout)
	default:
		return fmt.Errorf("%s of %s: %w", verb, in.RequestID, err)
	}
}

func printDecision(opts *rootOptions, in workflows.DecideInput, res workflows.DecideResult) {
	r := res.Request
	decided := r.Steps[r.Step]
	if r.State == workflows.RequestWaiting && r.Step > 0 {
		decided = r.Steps[r.Step-1]
	}
	word := "Approved"
	if !in.Approve {
		word = "Rejected"
	}
	fmt.Fprintf(opts.out, "%s %s as %s (%s step).\n", word, r.ID, in.ApproverID, decided.Kind)
	switch r.State {
	case workflows.RequestWaiting:
		s := r.Current()
		fmt.Fprintf(opts.out, "  next: step %d of %d (%s) waits for %s until %s\n",
			r.Step+1, len(r.Steps), s.Kind, strings.Join(r.WaitingFor(), " or "), localTime(s.ExpiresAt))
	case workflows.RequestApproved:
		fmt.Fprintf(opts.out, "  every step is approved: %s/%s is being granted to %s\n", r.Application, r.Entitlement, r.EmployeeID)
	case workflows.RequestRejected:
		fmt.Fprintf(opts.out, "  %s/%s will not be granted to %s (%s)\n", r.Application, r.Entitlement, r.EmployeeID, r.Reason)
	default:
		fmt.Fprintf(opts.out, "  request is %s\n", r.State)
	}
}
