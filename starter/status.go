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
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/workflows"
)

// runInfo is one run in `status` output: the visibility record (runRow)
// and, when the worker answers, the run's own state. Its JSON fields are
// stable.
type runInfo struct {
	runRow
	// Onboarding is the state of an onboarding run, when the worker answers.
	Onboarding *workflows.OnboardingState `json:"onboarding,omitempty"`
	// Offboarding is the state of an offboarding run, when the worker answers.
	Offboarding *workflows.OffboardingState `json:"offboarding,omitempty"`
}

// statusApproval is one approval request of the person still waiting for
// a decision, in `status` output; its JSON fields are stable.
type statusApproval struct {
	RequestID   string `json:"requestId"`
	WorkflowID  string `json:"workflowId"`
	Application string `json:"application"`
	Entitlement string `json:"entitlement"`
	// Step is 1-based, of Steps.
	Step  int    `json:"step"`
	Steps int    `json:"steps"`
	Kind  string `json:"kind"`
	// WaitingFor are the employee IDs that may decide now.
	WaitingFor   []string  `json:"waitingFor"`
	WaitingSince time.Time `json:"waitingSince"`
	EscalatesAt  time.Time `json:"escalatesAt,omitzero"`
	ExpiresAt    time.Time `json:"expiresAt"`
	URL          string    `json:"url"`
}

// statusReport is `status --output json`.
type statusReport struct {
	EmployeeID string `json:"employeeId"`
	// Summary is one line: joiner, active, leaver, and what needs doing.
	Summary string `json:"summary"`
	// Access is what the person holds now, from the access ledger.
	Access []holdingView `json:"access"`
	// LedgerError says why Access is missing when the ledger could not be
	// read; the runs are still shown.
	LedgerError string `json:"ledgerError,omitempty"`
	// LastChange is the person's latest ledger entry when they hold
	// nothing, so a leaver whose runs the history no longer keeps still
	// shows when access ended.
	LastChange *entryView `json:"lastChange,omitempty"`
	// Removal is, for a leaver whose access removal began, how each
	// account the ledger knows stands and whether a read-back of the
	// application verified its removal, sorted by application and account
	// (see ledger.Removal). Such a leaver is someone whose newest
	// offboarding is past its schedule and was not retracted or, when the
	// history keeps no offboarding, whose last ledger entry a leaver made.
	// It is absent for anyone else and when the ledger cannot be read, and
	// empty when the ledger has no account of the leaver.
	Removal []ledger.Removal `json:"removal,omitzero"`
	// PendingApprovals are the person's requests waiting for a decision.
	PendingApprovals []statusApproval `json:"pendingApprovals"`
	// Runs are every run about the person the history still keeps, newest
	// first.
	Runs []runInfo `json:"runs"`
}

func newStatusCmd(opts *rootOptions) *cobra.Command { return newStatusCmdWith(opts, openLedger) }

func newStatusCmdWith(opts *rootOptions, open openLedgerFunc) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status EMPLOYEE_ID",
		Short: "Show a person's access, pending approvals and runs",
		Long: `Show one person at a glance: a one-line summary, the accounts and
entitlements they hold now (from the access ledger), their approval
requests still waiting for a decision, and every run about them with its
state and Temporal UI link.

For a leaver, it also shows how each account stands after access removal:
its state, when removal was requested, and when and how a read-back of the
application verified it. The summary says "access removed (verified)" only
when the offboarding finished removing access and every account in the
ledger is removed and verified; otherwise it names the applications not
verified and why.

A person whose runs the Temporal history no longer keeps is still shown
from the ledger. If the ledger cannot be read, the runs are shown with a
warning.`,
		Example: `  starter status E100001
  starter status E100001 -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			id := args[0]
			if !hr.ValidEmployeeID(id) {
				return fmt.Errorf("employee ID must be E followed by 6 digits, got %q", clip(id))
			}
			rep, err := loadStatus(cmd.Context(), opts, open, id)
			if err != nil {
				return err
			}
			if output == "json" {
				return opts.printJSON(rep)
			}
			printStatus(opts.out, rep)
			return nil
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func loadStatus(ctx context.Context, opts *rootOptions, open openLedgerFunc, employeeID string) (statusReport, error) {
	c, cfg, err := opts.client(ctx)
	if err != nil {
		return statusReport{}, err
	}
	defer c.Close()
	rep := statusReport{EmployeeID: employeeID, Access: []holdingView{}, PendingApprovals: []statusApproval{}, Runs: []runInfo{}}
	if err := loadRuns(ctx, opts, c, cfg, &rep); err != nil {
		return rep, err
	}
	ledgerOK := loadLedger(ctx, opts, cfg, open, &rep)
	if len(rep.Runs) == 0 && len(rep.Access) == 0 && rep.LastChange == nil {
		if !ledgerOK {
			return rep, fmt.Errorf("no runs found for %s, and the access ledger cannot be read: %s", employeeID, rep.LedgerError)
		}
		return rep, fmt.Errorf("no runs and no access ledger entries for %s (never hired through this system, or not yet visible: retry in a second)", employeeID)
	}
	rep.Summary = statusSummary(rep, ledgerOK)
	return rep, nil
}

// loadRuns lists the person's runs, asks each onboarding and offboarding for
// its state, and each run waiting for approvers for its requests.
func loadRuns(ctx context.Context, opts *rootOptions, c client.Client, cfg config.Config, rep *statusReport) error {
	// The employee ID is validated (E + 6 digits), so it is safe inside the query.
	query := fmt.Sprintf("%s = '%s'", workflows.AttrEmployeeID.GetName(), rep.EmployeeID)
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token})
		if err != nil {
			return fmt.Errorf("list runs of %s: %w", rep.EmployeeID, err)
		}
		for _, e := range resp.GetExecutions() {
			ri := runInfo{runRow: rowFromExecution(cfg, e)}
			// The state query needs a worker; without one the run is still
			// listed, just without its accounts.
			switch ri.Type {
			case "Onboarding":
				ri.Onboarding = queryState[workflows.OnboardingState](ctx, c, ri)
			case "Offboarding":
				ri.Offboarding = queryState[workflows.OffboardingState](ctx, c, ri)
			}
			if ri.Status == "running" && len(ri.WaitingApprovers) > 0 {
				rep.PendingApprovals = append(rep.PendingApprovals, waitingApprovals(ctx, opts, c, ri)...)
			}
			rep.Runs = append(rep.Runs, ri)
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	slices.SortStableFunc(rep.Runs, func(a, b runInfo) int { return b.Started.Compare(a.Started) })
	slices.SortFunc(rep.PendingApprovals, func(a, b statusApproval) int {
		if c := a.WaitingSince.Compare(b.WaitingSince); c != 0 {
			return c
		}
		return strings.Compare(a.RequestID, b.RequestID)
	})
	return nil
}

// waitingApprovals asks a run that the WaitingApprovers search attribute
// says waits for someone for its requests, as `pending` does, keeping those
// still waiting.
func waitingApprovals(ctx context.Context, opts *rootOptions, c client.Client, ri runInfo) []statusApproval {
	v, err := c.QueryWorkflow(ctx, ri.WorkflowID, ri.RunID, workflows.QueryApprovals)
	var st workflows.ApprovalsState
	if err == nil {
		err = v.Get(&st)
	}
	if err != nil {
		fmt.Fprintf(opts.errOut, "warning: cannot read the approval requests of %s: %v\n", ri.WorkflowID, err)
		return nil
	}
	var out []statusApproval
	for _, r := range st.Requests {
		if r.State != workflows.RequestWaiting {
			continue
		}
		s := r.Current()
		out = append(out, statusApproval{
			RequestID: r.ID, WorkflowID: ri.WorkflowID, Application: r.Application, Entitlement: r.Entitlement,
			Step: r.Step + 1, Steps: len(r.Steps), Kind: s.Kind, WaitingFor: r.WaitingFor(),
			WaitingSince: s.StartedAt, EscalatesAt: s.EscalatesAt, ExpiresAt: s.ExpiresAt, URL: ri.URL,
		})
	}
	return out
}

// loadLedger fills the person's access from the ledger and reports whether
// it could be read; a failure is a warning, since the runs still tell a
// lot.
func loadLedger(ctx context.Context, opts *rootOptions, cfg config.Config, open openLedgerFunc, rep *statusReport) bool {
	fail := func(err error) bool {
		rep.LedgerError = err.Error()
		fmt.Fprintf(opts.errOut, "warning: %v\n", err)
		return false
	}
	l, release, err := open(ctx, cfg)
	if err != nil {
		return fail(ledgerErr(err))
	}
	defer release()
	hs, err := l.Holdings(ctx, rep.EmployeeID)
	if err != nil {
		return fail(ledgerErr(err))
	}
	rep.Access = holdingViews(cfg, hs)
	// The whole trail, not just the holdings: removal is told by the
	// entries that removed access and how they were verified.
	trail, err := l.Trail(ctx, rep.EmployeeID, time.Time{})
	if err != nil {
		return fail(ledgerErr(err))
	}
	if n := len(trail); n > 0 && len(hs) == 0 {
		last := trail[n-1]
		rep.LastChange = &entryView{Entry: last, URL: runURL(cfg, last.WorkflowID, last.RunID)}
	}
	if removalBegan(rep.Runs, trail) {
		rep.Removal = ledger.Removals(trail)
	}
	return true
}

// removalBegan reports whether the person is a leaver whose access removal
// began: their newest offboarding is past its schedule and was not
// retracted or, when the history keeps no offboarding (runs expire), their
// last ledger entry was made by a leaver.
func removalBegan(runs []runInfo, trail []ledger.Entry) bool {
	if off := newestRun(runs, "Offboarding"); off != nil {
		return off.Status != "canceled" && (off.Status != "running" || off.State != workflows.StateScheduled)
	}
	return len(trail) > 0 && trail[len(trail)-1].Event == ledger.EventLeaver
}

// newestRun is the newest run of a type in runs (newest first), or nil.
func newestRun(runs []runInfo, typ string) *runInfo {
	for i := range runs {
		if runs[i].Type == typ {
			return &runs[i]
		}
	}
	return nil
}

// statusSummary says in one line where the person stands: a leaver's
// offboarding wins over everything, then a running onboarding, then what
// the ledger says they hold; then what is under way or needs a look.
func statusSummary(rep statusReport, ledgerOK bool) string {
	enabled, disabled, ents := countHoldings(rep.Access)
	var head string
	off, on := newestRun(rep.Runs, "Offboarding"), newestRun(rep.Runs, "Onboarding")
	switch {
	case off != nil && off.Status == "canceled": // retracted: not a leaver
	case off != nil && off.State == workflows.StateScheduled && off.Status == "running":
		head = leaverSummary(off)
	case off != nil:
		head = verifiedLeaverSummary(off, rep.Removal, ledgerOK)
	}
	switch {
	case head != "": // a leaver: said above
	case on != nil && on.Status == "running" && on.State == workflows.StateWaitingStart:
		head = "joiner: provisioned, waiting for the start date"
	case on != nil && on.Status == "running":
		head = "joiner: onboarding " + orDash(on.State)
	case ledgerOK && enabled+disabled+ents > 0:
		head = "active: " + countText(enabled, disabled, ents)
	case on != nil && on.Status != "completed":
		head = "joiner: onboarding " + on.Status + ", no access kept"
	case ledgerOK && rep.LastChange != nil:
		head = fmt.Sprintf("no access held (last change: %s in %s at %s)",
			rep.LastChange.Action, rep.LastChange.Application, localTime(rep.LastChange.At))
	case ledgerOK:
		head = "no access held"
	case on != nil:
		head = "onboarding completed (access ledger unreadable)"
	default:
		head = "no onboarding run found (access ledger unreadable)"
	}
	parts := []string{head}
	if off == nil && rep.Removal != nil {
		// A leaver whose runs the history no longer keeps: the ledger alone
		// tells whether removal was verified.
		if gaps := removalGaps(rep.Removal); gaps != "" {
			parts = append(parts, "removal not verified in "+gaps)
		} else if len(rep.Removal) > 0 {
			parts = append(parts, "removal verified")
		}
	}
	var moving, temporary int
	var attention []string
	for _, r := range rep.Runs {
		if r.NeedsAttention {
			attention = append(attention, r.WorkflowID)
		}
		if r.Status != "running" {
			continue
		}
		switch r.Type {
		case "Mover":
			moving++
		case "TemporaryAccess":
			temporary++
		}
	}
	if moving > 0 {
		parts = append(parts, "role change under way")
	}
	if temporary > 0 {
		parts = append(parts, fmt.Sprintf("%d temporary access run(s)", temporary))
	}
	if n := len(rep.PendingApprovals); n > 0 {
		parts = append(parts, fmt.Sprintf("%d approval(s) pending", n))
	}
	if len(attention) > 0 {
		parts = append(parts, "needs attention: "+strings.Join(attention, ", "))
	}
	return strings.Join(parts, "; ")
}

func leaverSummary(off *runInfo) string {
	switch off.State {
	case workflows.StateScheduled:
		if st := off.Offboarding; st != nil && !st.AccessEndsAt.IsZero() {
			return "leaver: offboarding scheduled, access ends " + localTime(st.AccessEndsAt)
		}
		return "leaver: offboarding scheduled"
	case workflows.StateRetention, workflows.StateDeleting:
		return "leaver: access removed, disabled accounts kept until deletion"
	}
	return "leaver: offboarding " + orDash(off.State)
}

// verifiedLeaverSummary is the head of a leaver's summary once access
// removal began, with what the ledger says about its verification. It
// says "access removed (verified)" only when the offboarding finished
// removing access (completed, or keeping disabled accounts until
// deletion) and every account in the ledger is removed and verified by a
// read-back; otherwise it names each application not verified and why.
func verifiedLeaverSummary(off *runInfo, removal []ledger.Removal, ledgerOK bool) string {
	gaps := removalGaps(removal)
	var unverified string
	switch {
	case !ledgerOK:
		unverified = "not verified (access ledger unreadable)"
	case gaps != "":
		unverified = "not verified in " + gaps
	case len(removal) == 0:
		unverified = "nothing in the access ledger to verify"
	}
	// An account still enabled, or still holding an entitlement, is not
	// merely unverified: the run went on without it (its disable keeps
	// failing), and the summary must not call its access removed.
	removed := "leaver: access removed, "
	for _, r := range removal {
		if ledgerOK && !r.Removed {
			removed = "leaver: access NOT removed everywhere, "
		}
	}
	switch {
	case off.Status == "completed" && unverified == "":
		return "leaver: access removed (verified)"
	case off.Status == "completed":
		return removed + unverified
	case off.Status == "running" && (off.State == workflows.StateRetention || off.State == workflows.StateDeleting):
		if unverified == "" {
			return "leaver: access removed (verified), disabled accounts kept until deletion"
		}
		return removed + unverified + "; disabled accounts kept until deletion"
	}
	head := "leaver: offboarding " + off.Status + ", access may remain"
	if off.Status == "running" {
		head = leaverSummary(off)
	}
	// Still removing access, or stopped: what is not yet verified is the
	// news; a ledger with nothing to verify yet is not.
	if gaps != "" || !ledgerOK {
		head += ", " + unverified
	}
	return head
}

// removalGaps names, in few words, each account not removed and verified:
// "ldap (disable not confirmed), scim (deleted without read-back)". An
// account is named by its application, with the account name only when
// the application has several.
func removalGaps(removal []ledger.Removal) string {
	perApp := map[string]int{}
	for _, r := range removal {
		perApp[r.Application]++
	}
	var gaps []string
	for _, r := range removal {
		if r.Verified {
			continue
		}
		name := r.Application
		if perApp[r.Application] > 1 {
			name += "/" + r.Account
		}
		gaps = append(gaps, fmt.Sprintf("%s (%s)", name, r.Gap()))
	}
	return strings.Join(gaps, ", ")
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

func printStatus(w io.Writer, rep statusReport) {
	fmt.Fprintf(w, "Employee %s: %s\n", rep.EmployeeID, rep.Summary)

	fmt.Fprintln(w, "\nAccess now (from the access ledger):")
	switch {
	case rep.LedgerError != "":
		fmt.Fprintf(w, "  unknown: %s\n", rep.LedgerError)
	case len(rep.Access) == 0:
		fmt.Fprintln(w, "  nothing")
		if l := rep.LastChange; l != nil {
			fmt.Fprintf(w, "  last change: %s %s/%s at %s by %s (history: starter audit %s)\n",
				l.Action, l.Application, l.Account, localTime(l.At), orDash(l.WorkflowID), rep.EmployeeID)
		}
	default:
		printHoldingTable(w, rep.Access)
	}

	if rep.Removal != nil {
		printRemoval(w, rep.Removal)
	}

	if len(rep.PendingApprovals) > 0 {
		fmt.Fprintln(w, "\nApprovals pending:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "REQUEST\tSTEP\tWAITING FOR\tSINCE\tEXPIRES")
		for _, a := range rep.PendingApprovals {
			fmt.Fprintf(tw, "%s\t%d/%d %s\t%s\t%s\t%s\n", a.RequestID, a.Step, a.Steps, a.Kind,
				strings.Join(a.WaitingFor, " or "), localTime(a.WaitingSince), localTime(a.ExpiresAt))
		}
		_ = tw.Flush()
	}

	fmt.Fprintln(w, "\nRuns:")
	if len(rep.Runs) == 0 {
		fmt.Fprintln(w, "  none kept in the Temporal history")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKFLOW\tTYPE\tSTATUS\tSTATE\tSTARTED\tCLOSED")
	for _, r := range rep.Runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.WorkflowID, r.Type, r.Status, orDash(r.State),
			localTime(r.Started), closedTime(r.Closed))
	}
	_ = tw.Flush()
	for _, r := range rep.Runs {
		fmt.Fprintf(w, "\n%s: %s\n", r.WorkflowID, r.URL)
		if st := r.Offboarding; st != nil {
			printOffboarding(w, st)
			continue
		}
		if r.Onboarding == nil {
			continue
		}
		st := r.Onboarding
		if st.Username != "" {
			fmt.Fprintf(w, "  username: %s\n", st.Username)
		}
		for _, a := range st.Accounts {
			fmt.Fprintf(w, "  account in %-10s %s %v\n", a.Application, a.Username, a.Entitlements)
		}
		if st.Failure != "" {
			fmt.Fprintf(w, "  failure: %s\n", st.Failure)
		}
	}
}

// printRemoval shows a leaver's accounts: their state, when removal was
// asked for, and when and how a read-back verified it.
func printRemoval(w io.Writer, removal []ledger.Removal) {
	fmt.Fprintln(w, "\nAccess removal (from the access ledger):")
	if len(removal) == 0 {
		fmt.Fprintln(w, "  no account recorded")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APPLICATION\tACCOUNT\tSTATE\tREQUESTED\tVERIFIED")
	for _, r := range removal {
		requested, verified := "-", "not verified: "+r.Gap()
		if !r.RequestedAt.IsZero() {
			requested = localTime(r.RequestedAt)
		}
		if r.Verified {
			verified = localTime(r.VerifiedAt) + " by " + r.VerifiedBy
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Application, r.Account, r.State, requested, verified)
	}
	_ = tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printOffboarding(w io.Writer, st *workflows.OffboardingState) {
	if !st.AccessEndsAt.IsZero() {
		fmt.Fprintf(w, "  access ends: %s\n", st.AccessEndsAt.Local().Format(time.DateTime))
	}
	for _, a := range st.Accounts {
		state := "enabled"
		switch {
		case a.Deleted:
			state = "deleted"
		case a.Disabled:
			state = "disabled"
		}
		if a.Verified != "" {
			state += " (verified by " + a.Verified + ")"
		}
		line := fmt.Sprintf("  account in %-10s %s", a.Application, state)
		if len(a.Revoked) > 0 {
			line += fmt.Sprintf(", revoked %v", a.Revoked)
		}
		if !a.Deleted && !a.DeleteAfter.IsZero() {
			line += ", deleted after " + a.DeleteAfter.Local().Format(time.DateOnly)
		}
		if a.Fallback != "" {
			line += "; " + a.Fallback
		}
		fmt.Fprintln(w, line)
	}
	for _, p := range st.Problems {
		fmt.Fprintf(w, "  needs attention: %s %s: %s\n", p.Application, p.Step, p.Error)
	}
	if st.Failure != "" {
		fmt.Fprintf(w, "  failure: %s\n", st.Failure)
	}
}
