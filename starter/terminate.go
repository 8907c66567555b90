package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/workflows"
)

// retractWait bounds how long --retract waits for the run to confirm.
const retractWait = 30 * time.Second

// waitPoll is how often --wait looks at the run's state.
const waitPoll = 500 * time.Millisecond

type terminateOptions struct {
	file      string
	effective string
	reason    string
	wait      bool
	retract   bool
	// people checks the employee; replaceable so tests need no store.
	people openPeople
}

// terminateFlags names the argument or flag each field of a terminate
// event comes from.
var terminateFlags = map[string]string{"employee_id": "EMPLOYEE_ID", "effective": "--effective", "reason": "--reason"}

func newTerminateCmd(opts *rootOptions) *cobra.Command {
	return newTerminateCmdWith(opts, &terminateOptions{people: openStorePeople})
}

func newTerminateCmdWith(opts *rootOptions, t *terminateOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "terminate EMPLOYEE_ID | -f FILE",
		Short: "Offboard a leaver: remove all access now or when the last day ends",
		Long: `Start the offboarding workflow of one person.

Without --effective the kill switch runs at once: every account in every
application is disabled and its sessions ended, then every entitlement is
revoked, and each account is deleted when its application's retention (from
the policy) ends. With --effective the last working day is given, and access
ends when that day ends (midnight UTC); a day already over means now.

The person must be known: in the HR roster file, in the synced roster,
onboarded by this system or with a reserved username; a typo must not look
like a finished leaver.

Terminating a person whose offboarding is scheduled moves it to the new
--effective day. --retract withdraws a scheduled offboarding before it has
changed anything; once access was removed it is refused: a retraction never
restores access.

Instead of EMPLOYEE_ID and flags, -f FILE reads the event the webhook takes
("type" may be left out; effective and reason are optional; no other field
is accepted):

  {"type": "terminate", "employee_id": "E100001",
   "effective": "2026-12-31", "reason": "end of contract"}`,
		Example: `  starter terminate E100001
  starter terminate E100001 --effective 2026-12-31 --reason "end of contract"
  starter terminate E100001 --effective 2026-12-15      # move the last day
  starter terminate E100001 --retract
  starter terminate -f leaver.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return t.run(cmd, opts, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&t.file, "file", "f", "", "read the terminate event from a JSON file")
	f.StringVar(&t.effective, "effective", "", "last working day, YYYY-MM-DD; access ends when it ends (default: now)")
	f.StringVar(&t.reason, "reason", "", "why the person leaves, kept in the history")
	f.BoolVar(&t.wait, "wait", false, "wait until access is removed and print what was done")
	f.BoolVar(&t.retract, "retract", false, "withdraw a scheduled offboarding that has not run yet")
	cmd.MarkFlagsMutuallyExclusive("retract", "effective")
	cmd.MarkFlagsMutuallyExclusive("retract", "wait")
	cmd.MarkFlagsMutuallyExclusive("retract", "reason")
	cmd.MarkFlagsMutuallyExclusive("retract", "file")
	cmd.MarkFlagsMutuallyExclusive("file", "effective")
	cmd.MarkFlagsMutuallyExclusive("file", "reason")
	return cmd
}

// event builds the terminate event from the argument and flags or from
// -f, and checks its shape before anything is dialled.
func (t *terminateOptions) event(args []string) (events.Event, map[string]string, error) {
	var ev events.Event
	switch {
	case t.file != "" && len(args) > 0:
		return ev, nil, errors.New("give EMPLOYEE_ID or -f FILE, not both")
	case t.file != "":
		var err error
		if ev, err = readEventFile(t.file, events.TypeTerminate); err != nil {
			return ev, nil, err
		}
		if err := ev.Validate(); err != nil {
			return ev, nil, fmt.Errorf("%s: %w", t.file, err)
		}
		return ev, nil, nil
	case len(args) == 0:
		return ev, nil, errors.New("accepts 1 arg (EMPLOYEE_ID), received 0; or give -f FILE")
	}
	lastDay, err := hr.ParseDate(t.effective)
	if err != nil {
		return ev, nil, fmt.Errorf("--effective: %w", err)
	}
	ev = events.Event{Type: events.TypeTerminate, EmployeeID: args[0], Effective: lastDay, Reason: t.reason}
	if err := ev.Validate(); err != nil {
		return ev, nil, withFlagNames(err, terminateFlags)
	}
	return ev, terminateFlags, nil
}

func (t *terminateOptions) run(cmd *cobra.Command, opts *rootOptions, args []string) error {
	ev, names, err := t.event(args)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if t.retract {
		c, cfg, err := opts.client(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		return retract(ctx, opts, c, cfg, ev.EmployeeID)
	}
	lastDay := ev.Effective
	if t.wait && events.AccessEnd(lastDay, time.Now()).After(time.Now()) {
		return fmt.Errorf("--wait: access ends only when %s ends; follow it with `starter status %s`", lastDay, ev.EmployeeID)
	}
	r, c, _, err := startEvent(ctx, opts, t.people, ev)
	if err != nil {
		if t.file != "" && events.IsInvalid(err) {
			return fmt.Errorf("%s: %w", t.file, err)
		}
		return withFlagNames(err, names)
	}
	defer c.Close()
	eid, id := r.EmployeeID, r.WorkflowID
	switch {
	case r.Outcome == events.OutcomeStarted:
		fmt.Fprintf(opts.out, "Started offboarding of %s\n  workflow:    %s\n  run:         %s\n  access ends: %s\n  watch:       %s\n",
			eid, id, r.RunID, describeEnd(lastDay, r.AccessEnds), r.URL)
	case r.Outcome == events.OutcomeRescheduled && lastDay.IsZero():
		fmt.Fprintf(opts.out, "Moved the scheduled offboarding of %s to now: access ends now.\n  workflow: %s\n  watch:    %s\n", eid, id, r.URL)
	case r.Outcome == events.OutcomeRescheduled:
		fmt.Fprintf(opts.out, "Rescheduled the offboarding of %s: last day %s; access ends %s.\n  workflow: %s\n  watch:    %s\n",
			eid, lastDay, describeEnd(lastDay, r.AccessEnds), id, r.URL)
	default:
		fmt.Fprintf(opts.out, "Offboarding of %s is %s; nothing new started.\n  workflow: %s\n  watch:    %s\n",
			eid, r.Detail, id, r.URL)
		if r.Status != "running" {
			return nil
		}
	}
	if !t.wait {
		return nil
	}
	return waitAccessRemoved(ctx, opts, c, eid, id, r.RunID)
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
	if pending := notRemoved(st); len(pending) > 0 {
		return fmt.Errorf("access of %s is not removed in %s yet: the run keeps retrying and needs attention (follow it with `starter status %s`)",
			employeeID, strings.Join(pending, ", "), employeeID)
	}
	if !info.running {
		if err := c.GetWorkflow(ctx, id, runID).Get(ctx, nil); err != nil {
			return fmt.Errorf("offboarding of %s did not finish: %w", employeeID, err)
		}
	}
	return nil
}

// notRemoved lists the applications whose account is neither disabled
// nor deleted: a disable still failing (an outage, or an application that
// ignores it) while the run has gone on with the others.
func notRemoved(st workflows.OffboardingState) []string {
	var out []string
	for _, a := range st.Accounts {
		if !a.Disabled && !a.Deleted {
			out = append(out, a.Application)
		}
	}
	return out
}

func printOffboardingState(opts *rootOptions, employeeID string, st workflows.OffboardingState) {
	who := employeeID
	if st.Username != "" {
		who += " (" + st.Username + ")"
	}
	head := "Access removed for"
	if len(notRemoved(st)) > 0 {
		head = "Access NOT fully removed for"
	}
	fmt.Fprintf(opts.out, "%s %s at %s; state %s\n", head, who, st.AccessEndsAt.Local().Format(time.DateTime), st.State)
	if len(st.Accounts) == 0 && len(st.Skipped) == 0 {
		fmt.Fprintln(opts.out, "  no account anywhere: nothing to do")
	}
	for _, a := range st.Accounts {
		var parts []string
		switch {
		case a.Verified == ledger.VerifiedFallbackDelete:
			parts = append(parts, "deleted instead of disabled (verified gone): the application ignored the disable")
		case a.Deleted:
			parts = append(parts, "deleted")
		case a.Disabled && a.Verified != "":
			parts = append(parts, fmt.Sprintf("disabled (verified by %s), %d session(s) ended", a.Verified, a.SessionsEnded))
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

func describeEnd(lastDay hr.Date, end time.Time) string {
	if !end.After(time.Now()) {
		return "now"
	}
	return fmt.Sprintf("%s (end of the last day %s)", end.Format(time.RFC3339), lastDay)
}
