package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/reconcile"
	"github.com/provisio-dev/provisio/internal/roster"
	"github.com/provisio-dev/provisio/workflows"
)

// reconcileItems reads a run's findings (reconcile.Store).
type reconcileItems interface {
	Items(ctx context.Context, runID string, q reconcile.ItemQuery) ([]reconcile.Item, error)
}

var _ reconcileItems = (*reconcile.Store)(nil)

// openItemsFunc opens the findings store; the returned func releases it.
type openItemsFunc func(ctx context.Context, cfg config.Config) (reconcileItems, func(), error)

// openItems is the production openItemsFunc.
func openItems(ctx context.Context, cfg config.Config) (reconcileItems, func(), error) {
	pool, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return reconcile.NewStore(pool), pool.Close, nil
}

// reconcileCmd is what the reconcile commands share.
type reconcileCmd struct {
	opts     *rootOptions
	open     openItemsFunc
	now      func() time.Time
	terminal func(w io.Writer) bool
	// poll is how often --wait looks at the run.
	poll time.Duration
}

// runFlags are the flags that shape a run, shared by the on-demand command
// and the schedule.
type runFlags struct {
	apps, employees, accounts []string
	fix                       bool
	cap, capPercent, pageSize int
	source                    string
	approvalTimeout           time.Duration
}

func (f *runFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.apps, "app", nil, "application to reconcile (repeatable; default: every application of the policy)")
	fl.BoolVar(&f.fix, "fix", false, "fix what is found: disable orphans, revoke excess, provision missing")
	fl.IntVar(&f.cap, "cap", 0, fmt.Sprintf("most changes made without approval (default %d)", workflows.DefaultReconcileCap))
	fl.IntVar(&f.capPercent, "cap-percent", 0, "cap the changes at this percentage of the accounts scanned (1-100; with --cap the lower applies)")
	fl.StringVar(&f.source, "source", "", "roster feed that says who is active (default: active in any feed)")
	fl.StringArrayVar(&f.employees, "employee", nil, "only this person's accounts (repeatable)")
	fl.StringArrayVar(&f.accounts, "account", nil, "only this account, whoever owns it (repeatable)")
	fl.IntVar(&f.pageSize, "page-size", 0, fmt.Sprintf("accounts read per page (default %d, at most %d)", activities.DefaultReconcilePageSize, connectors.MaxPageSize))
	fl.DurationVar(&f.approvalTimeout, "approval-timeout", 0, "how long a run held at its cap waits for approval (default 24h)")
}

// input validates the flags into a workflow input, naming the flag that is
// wrong before anything is dialled.
func (f *runFlags) input() (workflows.ReconcileInput, error) {
	in := workflows.ReconcileInput{
		Apps: f.apps, Fix: f.fix, Cap: f.cap, CapPercent: f.capPercent, Source: f.source,
		Scope:    activities.ReconcileScope{EmployeeIDs: f.employees, Accounts: f.accounts},
		PageSize: f.pageSize, ApprovalTimeout: f.approvalTimeout,
	}
	switch {
	case f.cap < 0:
		return in, fmt.Errorf("--cap must not be negative, got %d", f.cap)
	case f.capPercent < 0 || f.capPercent > 100:
		return in, fmt.Errorf("--cap-percent must be 0 to 100, got %d", f.capPercent)
	case f.pageSize < 0 || f.pageSize > connectors.MaxPageSize:
		return in, fmt.Errorf("--page-size must be 0 to %d, got %d", connectors.MaxPageSize, f.pageSize)
	case f.approvalTimeout < 0 || f.approvalTimeout > workflows.MaxFixApprovalTimeout:
		return in, fmt.Errorf("--approval-timeout must be 0 to %s, got %s", workflows.MaxFixApprovalTimeout, f.approvalTimeout)
	}
	if f.source != "" {
		if err := roster.ValidateSource(f.source); err != nil {
			return in, fmt.Errorf("--source: %w", err)
		}
	}
	for _, id := range f.employees {
		if !hr.ValidEmployeeID(id) {
			return in, fmt.Errorf("--employee must be an employee ID (E followed by 6 digits), got %q", clip(id))
		}
	}
	for _, a := range f.apps {
		if !appNameRe.MatchString(a) {
			return in, fmt.Errorf("--app: %q is not an application name", clip(a))
		}
	}
	for _, a := range f.accounts {
		if strings.TrimSpace(a) == "" || strings.ContainsAny(a, "\n\r") {
			return in, fmt.Errorf("--account: %q is not a username", clip(a))
		}
	}
	return in, nil
}

func newReconcileCmd(opts *rootOptions) *cobra.Command {
	return newReconcileCmdWith(&reconcileCmd{opts: opts, open: openItems, now: time.Now, terminal: isTerminal, poll: time.Second})
}

func newReconcileCmdWith(r *reconcileCmd) *cobra.Command {
	var f runFlags
	var wait bool
	var output string
	cmd := &cobra.Command{
		Use:   "reconcile [--app APP] [--fix] [--wait] [--output json]",
		Short: "Compare the applications with HR and policy, and heal the difference",
		Long: `Start a reconciliation: every application (or those named with --app) is
paged through and compared with the people the synced roster says are
active, what policy grants them, and the approved or temporary grants the
access ledger records. Each difference is one item of a class:

  orphan     an enabled account of nobody active (the zombie)
  missing    access policy grants but the application lacks (an account,
             an entitlement, or an account left disabled)
  excess     an entitlement held that neither policy nor an approved or
             temporary grant justifies
  unmanaged  an account with no employee ID, or matching the policy's
             reconciliation.ignore patterns (service accounts), or an
             entitlement the policy does not declare: reported, never touched

People with a joiner, mover or leaver run in flight are skipped.

Without --fix the run only reports. With --fix it disables orphans (it never
deletes in the same pass), revokes excess and provisions missing access,
each through the same steps and ledger entries as the lifecycle workflows,
with this run's ID as the recorded reason. More changes than the cap (default
50, or --cap-percent of the accounts scanned) stop the run before it changes
anything, until an operator approves:

  starter reconcile approve RUN-ID --approver E100015

Without --wait the command prints the run's ID and returns; with it, it
shows progress on a terminal and prints the report: counts by class and
application and the first items of each class. --output json lists every
item. --employee and --account restrict the run to some people or accounts
(reconciling one person; tests on a shared stack).`,
		Example: `  starter reconcile --wait
  starter reconcile --app ldap --wait --output json
  starter reconcile --fix --wait
  starter reconcile --fix --cap-percent 2 --source hr
  starter reconcile schedule --every 6h
  starter reconcile report reconcile-20261125T143000Z --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			in, err := f.input()
			if err != nil {
				return err
			}
			return r.start(cmd.Context(), in, wait, output)
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the run to end (or to be held for approval) and print its report")
	outputFlag(cmd, &output)
	cmd.AddCommand(r.scheduleCmd(), r.reportCmd(), r.decideCmd(true), r.decideCmd(false))
	return cmd
}

// start starts an on-demand run.
func (r *reconcileCmd) start(ctx context.Context, in workflows.ReconcileInput, wait bool, output string) error {
	c, cfg, err := r.opts.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.ReconcileID(r.now())
	mode := "report"
	if in.Fix {
		mode = "fix"
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       id,
		TaskQueue:                                cfg.TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		StaticSummary:                            "Reconciliation (" + mode + ")",
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.AttrLifecycleEvent.ValueSet(workflows.EventReconciliation),
			workflows.AttrLifecycleState.ValueSet(workflows.StateScanning),
		),
	}, workflows.Reconcile, in)
	if err != nil {
		return fmt.Errorf("start reconciliation %s: %w", id, err)
	}
	if !wait {
		if output == "json" {
			return r.opts.printJSON(map[string]string{"runId": id, "workflowRunId": run.GetRunID(), "url": cfg.RunURL(id, run.GetRunID())})
		}
		fmt.Fprintf(r.opts.out, "Started reconciliation %s (%s mode)\n  %s\nReport when it ends: starter reconcile report %s\n", id, mode, cfg.RunURL(id, run.GetRunID()), id)
		return nil
	}
	return r.follow(ctx, c, cfg, id, output)
}

// follow waits for a run to end or to be held for approval, showing
// progress on a terminal, then prints its report.
func (r *reconcileCmd) follow(ctx context.Context, c client.Client, cfg config.Config, id, output string) error {
	var bar *progressbar.ProgressBar
	if output == "table" && r.terminal != nil && r.terminal(r.opts.errOut) {
		bar = progressbar.NewOptions(-1,
			progressbar.OptionSetWriter(r.opts.errOut),
			progressbar.OptionSetDescription("reconciling"),
			progressbar.OptionSpinnerType(14),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	for {
		rep, running, err := r.look(ctx, c, cfg, id)
		if errors.Is(err, errNoAnswer) {
			// No worker has answered the query yet (just started, or
			// restarting): keep waiting.
			running = true
		} else if err != nil {
			return err
		}
		if bar != nil && err == nil && running {
			desc, n := progressLine(rep.state, rep.scans)
			bar.Describe(desc)
			_ = bar.Set(n)
		}
		if err == nil && (!running || rep.State == workflows.StateWaitingApproval) {
			if bar != nil {
				_ = bar.Finish()
			}
			if err := r.print(ctx, cfg, rep, output); err != nil {
				return err
			}
			if rep.State == workflows.StateWaitingApproval {
				return fmt.Errorf("run %s is held: %d planned fixes exceed the cap of %d; approve with `starter reconcile approve %s --approver ID` or reject with `starter reconcile reject %s --approver ID`",
					id, rep.PlannedFixes, rep.Cap, id, id)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.poll):
		}
	}
}

// runReport is a run's report as `reconcile --output json` prints it.
type runReport struct {
	workflows.ReconcileResult
	// State is the run's lifecycle state (scanning, waiting-approval,
	// fixing, completed, ...).
	State string `json:"state"`
	// ApprovalDeadline is when a held run gives up waiting.
	ApprovalDeadline time.Time `json:"approvalDeadline,omitzero"`
	URL              string    `json:"url"`
	// Items are every item of the run, in the order found (JSON only).
	Items []reconcile.Item `json:"items"`

	state workflows.ReconcileState
	scans []activities.ScanProgress
}

// errNoAnswer means a running run did not answer its state query: no
// worker has picked it up yet.
var errNoAnswer = errors.New("the run does not answer yet (is a worker running?)")

// look reads a run: its result once closed, its state and the scans'
// heartbeats while it runs.
func (r *reconcileCmd) look(ctx context.Context, c client.Client, cfg config.Config, id string) (runReport, bool, error) {
	d, err := c.DescribeWorkflow(ctx, id, "")
	if err != nil {
		return runReport{}, false, fmt.Errorf("reconciliation %s: %w", id, err)
	}
	desc := d.RawResponse
	info := desc.GetWorkflowExecutionInfo()
	rep := runReport{URL: cfg.RunURL(id, info.GetExecution().GetRunId())}
	if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryState)
		if err != nil {
			return runReport{}, true, fmt.Errorf("reconciliation %s: %w: %w", id, errNoAnswer, err)
		}
		if err := v.Get(&rep.state); err != nil {
			return runReport{}, false, fmt.Errorf("reconciliation %s: read its state: %w", id, err)
		}
		rep.ReconcileResult, rep.State, rep.ApprovalDeadline = rep.state.Result, rep.state.State, rep.state.ApprovalDeadline
		for _, pa := range desc.GetPendingActivities() {
			var p activities.ScanProgress
			if pa.GetHeartbeatDetails() != nil && converter.GetDefaultDataConverter().FromPayloads(pa.GetHeartbeatDetails(), &p) == nil && p.App != "" {
				rep.scans = append(rep.scans, p)
			}
		}
		return rep, true, nil
	}
	if err := c.GetWorkflow(ctx, id, "").Get(ctx, &rep.ReconcileResult); err != nil {
		return runReport{}, false, fmt.Errorf("reconciliation %s: %w", id, err)
	}
	rep.State = rep.Status
	return rep, false, nil
}

// progressLine describes a running run for the progress bar, with the
// number the bar shows: accounts scanned, then fixes made.
func progressLine(st workflows.ReconcileState, scans []activities.ScanProgress) (string, int) {
	switch st.State {
	case workflows.StateFixing:
		done := st.Result.Fixed + st.Result.Failed + st.Result.Skipped
		return fmt.Sprintf("fixing %d/%d", done, st.Result.PlannedFixes), done
	case workflows.StateScanning:
		parts, n := []string{}, 0
		for _, s := range scans {
			parts = append(parts, fmt.Sprintf("%s %d accounts, %d people", s.App, s.Accounts, s.People))
			n += s.Accounts
		}
		for _, a := range st.Result.Apps {
			parts = append(parts, a.App+" done")
			n += a.Accounts
		}
		return "scanning " + strings.Join(parts, "; "), n
	}
	return st.State, 0
}

// print writes the report: a table, or JSON with every item.
func (r *reconcileCmd) print(ctx context.Context, cfg config.Config, rep runReport, output string) error {
	if output == "json" {
		st, closeStore, err := r.open(ctx, cfg)
		if err != nil {
			return err
		}
		defer closeStore()
		if rep.Items, err = st.Items(ctx, rep.RunID, reconcile.ItemQuery{}); err != nil {
			return ledgerErr(err)
		}
		if rep.Items == nil {
			rep.Items = []reconcile.Item{}
		}
		return r.opts.printJSON(rep)
	}
	printReconcileReport(r.opts.out, rep)
	return nil
}

func printReconcileReport(w io.Writer, rep runReport) {
	fmt.Fprintf(w, "Reconciliation %s (%s mode): %s\n  %s\n\n", rep.RunID, rep.Mode, orDash(rep.State), rep.URL)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APPLICATION\tACCOUNTS\tORPHAN\tMISSING\tEXCESS\tUNMANAGED\tSKIPPED\tFIXES\t")
	var tot [6]int
	var failed []string
	for _, a := range rep.Apps {
		if a.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\t\n", a.App)
			failed = append(failed, fmt.Sprintf("Scan of %s failed (nothing there is fixed): %s", a.App, a.Error))
			continue
		}
		row := [6]int{a.Counts[reconcile.ClassOrphan], a.Counts[reconcile.ClassMissing], a.Counts[reconcile.ClassExcess],
			a.Counts[reconcile.ClassUnmanaged], a.Skipped, a.Fixes}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", a.App, a.Accounts, row[0], row[1], row[2], row[3], row[4], row[5])
		for i := range row {
			tot[i] += row[i]
		}
	}
	fmt.Fprintf(tw, "TOTAL\t\t%d\t%d\t%d\t%d\t%d\t%d\t\n", tot[0], tot[1], tot[2], tot[3], tot[4], tot[5])
	_ = tw.Flush()
	for _, f := range failed {
		fmt.Fprintln(w, f)
	}

	var samples []reconcile.Item
	for _, a := range rep.Apps {
		samples = append(samples, a.Samples...)
	}
	if len(samples) > 0 {
		fmt.Fprintln(w, "\nItems (the first of each class per application):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CLASS\tAPPLICATION\tACCOUNT\tEMPLOYEE\tENTITLEMENT\tFIX\tREASON\t")
		for _, it := range samples {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", it.Class, it.Application, orDash(it.Account), orDash(it.EmployeeID),
				orDash(it.Entitlement), orDash(string(it.Action)), it.Reason)
		}
		_ = tw.Flush()
	}
	if rep.Mode == "fix" {
		fmt.Fprintf(w, "\nFixes: %d planned, cap %d; %d made, %d failed, %d skipped\n", rep.PlannedFixes, rep.Cap, rep.Fixed, rep.Failed, rep.Skipped)
		if a := rep.Approval; a != nil {
			verb := "rejected"
			if a.Approve {
				verb = "approved"
			}
			fmt.Fprintf(w, "Fixes %s by %s at %s\n", verb, a.ApproverID, a.DecidedAt.UTC().Format(time.RFC3339))
		}
		if !rep.ApprovalDeadline.IsZero() {
			fmt.Fprintf(w, "Waiting for approval until %s\n", rep.ApprovalDeadline.UTC().Format(time.RFC3339))
		}
	}
	fmt.Fprintf(w, "\nEvery item: starter reconcile report %s --output json\n", rep.RunID)
}

// reconcileIDRe accepts the IDs reconciliation runs get (on demand and
// from the schedule) and nothing that could be mistaken for another run.
var reconcileIDRe = regexp.MustCompile(`^reconcile-[0-9A-Za-z:.-]{1,80}$`)

func checkRunID(id string) error {
	if !reconcileIDRe.MatchString(id) || id == workflows.ReconcileScheduleID {
		return fmt.Errorf("RUN-ID: want a reconciliation run ID such as reconcile-20261125T143000Z, got %q", clip(id))
	}
	return nil
}

func (r *reconcileCmd) reportCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "report RUN-ID",
		Short: "Print the report of a reconciliation run (running or ended)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if err := checkRunID(args[0]); err != nil {
				return err
			}
			ctx := cmd.Context()
			c, cfg, err := r.opts.client(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			rep, _, err := r.look(ctx, c, cfg, args[0])
			if err != nil {
				return err
			}
			return r.print(ctx, cfg, rep, output)
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

// decideCmd is `reconcile approve` or `reconcile reject`.
func (r *reconcileCmd) decideCmd(approve bool) *cobra.Command {
	var approver, comment string
	use, short := "reject", "Refuse the fixes of a run held at its change cap; it ends with nothing changed"
	if approve {
		use, short = "approve", "Let a run held at its change cap make every planned fix"
	}
	cmd := &cobra.Command{
		Use:   use + " RUN-ID --approver ID [--comment TEXT]",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkRunID(args[0]); err != nil {
				return err
			}
			if !hr.ValidEmployeeID(approver) {
				return fmt.Errorf("--approver must be an employee ID (E followed by 6 digits), got %q", clip(approver))
			}
			ctx := cmd.Context()
			c, _, err := r.opts.client(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
				WorkflowID: args[0], UpdateName: workflows.UpdateApproveFixes,
				Args:         []any{workflows.FixDecision{ApproverID: approver, Approve: approve, Comment: comment}},
				WaitForStage: client.WorkflowUpdateStageCompleted,
			})
			if err != nil {
				return fmt.Errorf("%s %s: %w", use, args[0], err)
			}
			var st workflows.ReconcileState
			if err := h.Get(ctx, &st); err != nil {
				return fmt.Errorf("%s %s: %w", use, args[0], err)
			}
			if approve {
				fmt.Fprintf(r.opts.out, "Approved: %s makes its %d planned fixes\n", args[0], st.Result.PlannedFixes)
			} else {
				fmt.Fprintf(r.opts.out, "Rejected: %s ends with nothing changed\n", args[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&approver, "approver", "", "employee ID of whoever decides (required)")
	cmd.Flags().StringVar(&comment, "comment", "", "why, recorded with the decision")
	_ = cmd.MarkFlagRequired("approver")
	return cmd
}

// minScheduleEvery bounds how often the schedule runs: a scan of a large
// application takes minutes.
const minScheduleEvery = 5 * time.Minute

func (r *reconcileCmd) scheduleCmd() *cobra.Command {
	var f runFlags
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "schedule --every DURATION [--fix] [run flags] | schedule pause|resume|delete|show",
		Short: "Run reconciliation periodically on a Temporal Schedule",
		Long: `Create (or change) the Temporal Schedule ` + workflows.ReconcileScheduleID + `, which starts a
reconciliation every DURATION with the given run flags. A run still going
(or held for approval) when the next is due makes the schedule skip that
one. pause, resume and delete act on the schedule; show prints it.`,
		Example: `  starter reconcile schedule --every 6h
  starter reconcile schedule --every 24h --fix --cap-percent 1
  starter reconcile schedule pause
  starter reconcile schedule delete`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if every < minScheduleEvery {
				return fmt.Errorf("--every must be at least %s, got %s", minScheduleEvery, every)
			}
			in, err := f.input()
			if err != nil {
				return err
			}
			return r.schedule(cmd.Context(), in, every)
		},
	}
	f.add(cmd)
	cmd.Flags().DurationVar(&every, "every", 0, "how often to run, e.g. 6h (required)")
	for _, act := range []struct{ name, short string }{
		{"pause", "Pause the reconciliation schedule"},
		{"resume", "Resume the paused reconciliation schedule"},
		{"delete", "Delete the reconciliation schedule (runs already started go on)"},
		{"show", "Show the reconciliation schedule and its next runs"},
	} {
		cmd.AddCommand(&cobra.Command{
			Use: act.name, Short: act.short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return r.scheduleAction(cmd.Context(), act.name) },
		})
	}
	return cmd
}

func (r *reconcileCmd) schedule(ctx context.Context, in workflows.ReconcileInput, every time.Duration) error {
	c, cfg, err := r.opts.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	action := &client.ScheduleWorkflowAction{
		ID: workflows.ReconcileScheduledID, Workflow: workflows.Reconcile, Args: []any{in}, TaskQueue: cfg.TaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.AttrLifecycleEvent.ValueSet(workflows.EventReconciliation),
			workflows.AttrLifecycleState.ValueSet(workflows.StateScanning),
		),
	}
	sc := c.ScheduleClient()
	_, err = sc.Create(ctx, client.ScheduleOptions{
		ID: workflows.ReconcileScheduleID, Spec: spec, Action: action,
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Note:    "created by starter reconcile schedule",
	})
	verb := "Created"
	if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		verb = "Updated"
		err = sc.GetHandle(ctx, workflows.ReconcileScheduleID).Update(ctx, client.ScheduleUpdateOptions{
			DoUpdate: func(u client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
				s := u.Description.Schedule
				s.Spec, s.Action = &spec, action
				if s.Policy != nil {
					s.Policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
				}
				return &client.ScheduleUpdate{Schedule: &s}, nil
			},
		})
	}
	if err != nil {
		return fmt.Errorf("schedule %s: %w", workflows.ReconcileScheduleID, err)
	}
	mode := "report"
	if in.Fix {
		mode = "fix"
	}
	fmt.Fprintf(r.opts.out, "%s schedule %s: a %s-mode reconciliation every %s\n", verb, workflows.ReconcileScheduleID, mode, every)
	return nil
}

func (r *reconcileCmd) scheduleAction(ctx context.Context, action string) error {
	c, _, err := r.opts.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	h := c.ScheduleClient().GetHandle(ctx, workflows.ReconcileScheduleID)
	note := "starter reconcile schedule " + action
	switch action {
	case "pause":
		err = h.Pause(ctx, client.SchedulePauseOptions{Note: note})
	case "resume":
		err = h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: note})
	case "delete":
		err = h.Delete(ctx)
	case "show":
		var d *client.ScheduleDescription
		if d, err = h.Describe(ctx); err == nil {
			printSchedule(r.opts.out, d)
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("schedule %s %s: %w", workflows.ReconcileScheduleID, action, err)
	}
	fmt.Fprintf(r.opts.out, "Schedule %s: %s done\n", workflows.ReconcileScheduleID, action)
	return nil
}

func printSchedule(w io.Writer, d *client.ScheduleDescription) {
	state := "active"
	if d.Schedule.State != nil && d.Schedule.State.Paused {
		state = "paused"
	}
	fmt.Fprintf(w, "Schedule %s: %s\n", workflows.ReconcileScheduleID, state)
	if d.Schedule.Spec != nil {
		for _, iv := range d.Schedule.Spec.Intervals {
			fmt.Fprintf(w, "  every %s\n", iv.Every)
		}
	}
	for _, t := range d.Info.NextActionTimes {
		fmt.Fprintf(w, "  next run %s\n", t.UTC().Format(time.RFC3339))
	}
	for _, a := range d.Info.RecentActions {
		if a.StartWorkflowResult != nil {
			fmt.Fprintf(w, "  ran %s at %s\n", a.StartWorkflowResult.WorkflowID, a.ActualTime.UTC().Format(time.RFC3339))
		}
	}
}
