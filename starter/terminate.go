package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/username"
	"github.com/provisio-dev/provisio/workflows"
)

// retractWait bounds how long --retract waits for the run to confirm.
const retractWait = 30 * time.Second

// waitPoll is how often --wait looks at the run's state.
const waitPoll = 500 * time.Millisecond

type terminateOptions struct {
	effective string
	reason    string
	wait      bool
	retract   bool
	// hasUsername reports whether a username is reserved for the
	// employee; replaceable so tests need no store.
	hasUsername func(ctx context.Context, cfg config.Config, employeeID string) (bool, error)
}

func newTerminateCmd(opts *rootOptions) *cobra.Command {
	return newTerminateCmdWith(opts, &terminateOptions{hasUsername: storeHasUsername})
}

func newTerminateCmdWith(opts *rootOptions, t *terminateOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "terminate EMPLOYEE_ID",
		Short: "Offboard a leaver: remove all access now or when the last day ends",
		Long: `Start the offboarding workflow of one person.

Without --effective the kill switch runs at once: every account in every
application is disabled and its sessions ended, then every entitlement is
revoked, and each account is deleted when its application's retention (from
the policy) ends. With --effective the last working day is given, and access
ends when that day ends (midnight UTC); a day already over means now.

Terminating a person whose offboarding is scheduled moves it to the new
--effective day. --retract withdraws a scheduled offboarding before it has
changed anything; once access was removed it is refused: a retraction never
restores access.`,
		Example: `  starter terminate E100001
  starter terminate E100001 --effective 2026-12-31 --reason "end of contract"
  starter terminate E100001 --effective 2026-12-15      # move the last day
  starter terminate E100001 --retract`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return t.run(cmd, opts, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&t.effective, "effective", "", "last working day, YYYY-MM-DD; access ends when it ends (default: now)")
	f.StringVar(&t.reason, "reason", "", "why the person leaves, kept in the history")
	f.BoolVar(&t.wait, "wait", false, "wait until access is removed and print what was done")
	f.BoolVar(&t.retract, "retract", false, "withdraw a scheduled offboarding that has not run yet")
	cmd.MarkFlagsMutuallyExclusive("retract", "effective")
	cmd.MarkFlagsMutuallyExclusive("retract", "wait")
	cmd.MarkFlagsMutuallyExclusive("retract", "reason")
	return cmd
}

func (t *terminateOptions) run(cmd *cobra.Command, opts *rootOptions, employeeID string) error {
	if !hr.ValidEmployeeID(employeeID) {
		return fmt.Errorf("employee ID must be E followed by 6 digits, got %q", employeeID)
	}
	lastDay, err := hr.ParseDate(t.effective)
	if err != nil {
		return fmt.Errorf("--effective: %w", err)
	}
	if t.wait && accessEnd(lastDay, time.Now()).After(time.Now()) {
		return fmt.Errorf("--wait: access ends only when %s ends; follow it with `starter status %s`", lastDay, employeeID)
	}
	ctx := cmd.Context()
	c, cfg, err := opts.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if t.retract {
		return retract(ctx, opts, c, cfg, employeeID)
	}
	if err := t.checkKnown(ctx, c, cfg, employeeID); err != nil {
		return err
	}

	id := workflows.OffboardingID(employeeID)
	end := accessEnd(lastDay, time.Now())
	state := workflows.StateDisabling
	if end.After(time.Now()) {
		state = workflows.StateScheduled
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: cfg.TaskQueue,
		// A completed offboarding is never repeated, but a retracted
		// (cancelled) or failed one must not block a later termination.
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		StaticSummary:                            "Offboarding of " + employeeID,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.AttrEmployeeID.ValueSet(employeeID),
			workflows.AttrLifecycleEvent.ValueSet(workflows.EventLeaver),
			workflows.AttrLifecycleState.ValueSet(state),
		),
	}, workflows.Offboarding, workflows.OffboardingInput{EmployeeID: employeeID, LastDay: lastDay, Reason: t.reason})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return t.existing(ctx, opts, c, cfg, employeeID, lastDay)
	}
	if err != nil {
		return fmt.Errorf("start offboarding of %s: %w", employeeID, err)
	}
	fmt.Fprintf(opts.out, "Started offboarding of %s\n  workflow:    %s\n  run:         %s\n  access ends: %s\n  watch:       %s\n",
		employeeID, id, run.GetRunID(), describeEnd(lastDay, end), cfg.RunURL(id, run.GetRunID()))
	if !t.wait {
		return nil
	}
	return waitAccessRemoved(ctx, opts, c, employeeID, id, run.GetRunID())
}

// checkKnown refuses an employee this system never saw: no onboarding run
// and no reserved username. A typo must not look like a finished leaver.
func (t *terminateOptions) checkKnown(ctx context.Context, c client.Client, cfg config.Config, employeeID string) error {
	_, err := c.DescribeWorkflow(ctx, workflows.OnboardingID(employeeID), "")
	var nf *serviceerror.NotFound
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &nf):
		return fmt.Errorf("look up the onboarding of %s: %w", employeeID, err)
	}
	ok, err := t.hasUsername(ctx, cfg, employeeID)
	if err != nil {
		return fmt.Errorf("cannot tell whether %s is known (no onboarding run; username store: %w)", employeeID, err)
	}
	if !ok {
		return fmt.Errorf("unknown employee %s: never onboarded by this system and no username reserved; nothing to offboard", employeeID)
	}
	return nil
}

// storeHasUsername asks the username store whether employeeID has one.
func storeHasUsername(ctx context.Context, cfg config.Config, employeeID string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pcfg, err := pgxpool.ParseConfig(cfg.StoreURL)
	if err != nil {
		return false, fmt.Errorf("store URL %s: %w", config.Redact(cfg.StoreURL), err)
	}
	pcfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return false, err
	}
	defer pool.Close()
	_, ok, err := username.NewReserver(pool).Lookup(ctx, employeeID)
	return ok, err
}

// existing handles a termination of someone whose offboarding already
// runs or ran: a new last day moves a scheduled run; anything else only
// reports.
func (t *terminateOptions) existing(ctx context.Context, opts *rootOptions, c client.Client, cfg config.Config, employeeID string, lastDay hr.Date) error {
	id := workflows.OffboardingID(employeeID)
	info, err := describe(ctx, c, id)
	if err != nil {
		return fmt.Errorf("offboarding of %s already exists but cannot be described: %w", employeeID, err)
	}
	url := cfg.RunURL(id, info.runID)
	if !info.running {
		fmt.Fprintf(opts.out, "Offboarding of %s is already done (%s, %s); nothing new started.\n  workflow: %s\n  watch:    %s\n",
			employeeID, info.status, orDash(info.state), id, url)
		return nil
	}
	if t.effective == "" {
		fmt.Fprintf(opts.out, "Offboarding of %s is already in progress (%s); nothing new started.\n  workflow: %s\n  watch:    %s\n",
			employeeID, orDash(info.state), id, url)
		if t.wait {
			return waitAccessRemoved(ctx, opts, c, employeeID, id, info.runID)
		}
		return nil
	}
	if info.state != workflows.StateScheduled {
		return fmt.Errorf("offboarding of %s has already removed access (state %s): the new last day %s changes nothing\n  watch: %s",
			employeeID, orDash(info.state), lastDay, url)
	}
	if err := c.SignalWorkflow(ctx, id, info.runID, workflows.SignalReschedule, workflows.RescheduleInput{LastDay: lastDay}); err != nil {
		return fmt.Errorf("reschedule offboarding of %s: %w", employeeID, err)
	}
	fmt.Fprintf(opts.out, "Rescheduled the offboarding of %s: last day %s; access ends %s.\n  workflow: %s\n  watch:    %s\n",
		employeeID, lastDay, describeEnd(lastDay, accessEnd(lastDay, time.Now())), id, url)
	if t.wait {
		return waitAccessRemoved(ctx, opts, c, employeeID, id, info.runID)
	}
	return nil
}

// retract cancels a scheduled offboarding, and refuses once the kill
// switch ran: cancelling then would only skip deletions, never restore
// access, which is not what HR means by retracting.
func retract(ctx context.Context, opts *rootOptions, c client.Client, cfg config.Config, employeeID string) error {
	id := workflows.OffboardingID(employeeID)
	info, err := describe(ctx, c, id)
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return fmt.Errorf("no offboarding of %s to retract", employeeID)
	case err != nil:
		return fmt.Errorf("look up the offboarding of %s: %w", employeeID, err)
	case !info.running:
		return fmt.Errorf("the offboarding of %s has already finished (%s, %s): nothing to retract", employeeID, info.status, orDash(info.state))
	case info.state != workflows.StateScheduled:
		return fmt.Errorf("refusing to retract the offboarding of %s: its kill switch already ran (state %s), so access is gone and a retraction would not restore it; hire the person again instead\n  watch: %s",
			employeeID, orDash(info.state), cfg.RunURL(id, info.runID))
	}
	if err := c.CancelWorkflow(ctx, id, info.runID); err != nil {
		return fmt.Errorf("retract offboarding of %s: %w", employeeID, err)
	}
	wctx, cancel := context.WithTimeout(ctx, retractWait)
	defer cancel()
	_ = c.GetWorkflow(wctx, id, info.runID).Get(wctx, nil)
	after, err := describe(ctx, c, id)
	switch {
	case err != nil:
		return fmt.Errorf("retraction of %s requested, but its outcome cannot be read: %w", employeeID, err)
	case after.running:
		fmt.Fprintf(opts.out, "Retraction of the offboarding of %s requested; the worker has not confirmed it yet.\n  watch: %s\n",
			employeeID, cfg.RunURL(id, info.runID))
		return nil
	case after.state != workflows.StateRetracted:
		return fmt.Errorf("the offboarding of %s had started before the retraction arrived (state %s): access was removed and is not restored\n  watch: %s",
			employeeID, orDash(after.state), cfg.RunURL(id, info.runID))
	}
	fmt.Fprintf(opts.out, "Retracted the offboarding of %s: nothing was changed.\n  workflow: %s\n", employeeID, id)
	return nil
}

// describedRun is what describe reads of a workflow's latest run.
type describedRun struct {
	runID, status, state string
	running              bool
}

func describe(ctx context.Context, c client.Client, id string) (describedRun, error) {
	desc, err := c.DescribeWorkflow(ctx, id, "")
	if err != nil {
		return describedRun{}, err
	}
	state, _ := desc.TypedSearchAttributes.GetKeyword(workflows.AttrLifecycleState)
	return describedRun{
		runID:   desc.WorkflowExecution.RunID,
		status:  statusName(desc.Status),
		state:   state,
		running: desc.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
	}, nil
}

// accessRemoved are the states in which no access is left to remove.
var accessRemoved = []string{
	workflows.StateRetention, workflows.StateDeleting, workflows.StateCompleted,
	workflows.StateFailed, workflows.StateCancelled, workflows.StateRetracted,
}

// waitAccessRemoved waits until the kill switch has disabled and revoked
// everything (the deletions come weeks later), then prints what was done.
func waitAccessRemoved(ctx context.Context, opts *rootOptions, c client.Client, employeeID, id, runID string) error {
	var info describedRun
	for {
		var err error
		if info, err = describe(ctx, c, id); err != nil {
			return fmt.Errorf("follow offboarding of %s: %w", employeeID, err)
		}
		if !info.running || slices.Contains(accessRemoved, info.state) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(waitPoll):
		}
	}
	v, err := c.QueryWorkflow(ctx, id, runID, workflows.QueryState)
	if err != nil {
		return fmt.Errorf("read offboarding state of %s: %w", employeeID, err)
	}
	var st workflows.OffboardingState
	if err := v.Get(&st); err != nil {
		return fmt.Errorf("read offboarding state of %s: %w", employeeID, err)
	}
	printOffboardingState(opts, employeeID, st)
	if !info.running {
		if err := c.GetWorkflow(ctx, id, runID).Get(ctx, nil); err != nil {
			return fmt.Errorf("offboarding of %s did not finish: %w", employeeID, err)
		}
	}
	return nil
}

func printOffboardingState(opts *rootOptions, employeeID string, st workflows.OffboardingState) {
	who := employeeID
	if st.Username != "" {
		who += " (" + st.Username + ")"
	}
	fmt.Fprintf(opts.out, "Access removed for %s at %s; state %s\n", who, st.AccessEndsAt.Local().Format(time.DateTime), st.State)
	if len(st.Accounts) == 0 && len(st.Skipped) == 0 {
		fmt.Fprintln(opts.out, "  no account anywhere: nothing to do")
	}
	for _, a := range st.Accounts {
		var parts []string
		switch {
		case a.Deleted:
			parts = append(parts, "deleted")
		case a.Disabled:
			parts = append(parts, fmt.Sprintf("disabled, %d session(s) ended", a.SessionsEnded))
		default:
			parts = append(parts, "NOT disabled yet")
		}
		if len(a.Revoked) > 0 {
			parts = append(parts, "revoked "+strings.Join(a.Revoked, ", "))
		}
		if !a.Deleted && !a.DeleteAfter.IsZero() {
			parts = append(parts, "deleted after "+a.DeleteAfter.Local().Format(time.DateOnly))
		}
		fmt.Fprintf(opts.out, "  %-10s %s\n", a.Application, strings.Join(parts, "; "))
	}
	for _, s := range st.Skipped {
		fmt.Fprintf(opts.out, "  %-10s skipped: %s\n", s.Application, s.Reason)
	}
	for _, p := range st.Problems {
		fmt.Fprintf(opts.out, "  needs attention: %s: %s: %s\n", p.Application, p.Step, p.Error)
	}
	if st.Failure != "" {
		fmt.Fprintf(opts.out, "  failure: %s\n", st.Failure)
	}
}

// accessEnd mirrors the workflow: access ends when the last day ends
// (midnight UTC), or now when no day is given or it is over.
func accessEnd(lastDay hr.Date, now time.Time) time.Time {
	if lastDay.IsZero() {
		return now
	}
	t := lastDay.UTC()
	if end := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, time.UTC); end.After(now) {
		return end
	}
	return now
}

func describeEnd(lastDay hr.Date, end time.Time) string {
	if !end.After(time.Now()) {
		return "now"
	}
	return fmt.Sprintf("%s (end of the last day %s)", end.Format(time.RFC3339), lastDay)
}
