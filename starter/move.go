package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/workflows"
)

type moveOptions struct {
	person hireOptions
	wait   bool
	// hasUsername reports whether a username is reserved for the
	// employee; replaceable so tests need no store.
	hasUsername func(ctx context.Context, cfg config.Config, employeeID string) (bool, error)
}

func newMoveCmd(opts *rootOptions) *cobra.Command {
	return newMoveCmdWith(opts, &moveOptions{hasUsername: storeHasUsername})
}

func newMoveCmdWith(opts *rootOptions, m *moveOptions) *cobra.Command {
	m.person.verb = "move"
	cmd := &cobra.Command{
		Use:   "move",
		Short: "Apply a role change: new department, title, manager, location or type",
		Long: `Queue a role change of one person with their new HR attributes.

The change goes to the person's sequencer (workflow person-<ID>), which runs
their role changes one at a time, in the order they arrived, each as a mover
workflow (mover-<ID>-<change key>).

The person comes from flags, from a JSON file (-f person.json) or from an HR
roster (--roster FILE --employee-id ID), like hire, and must be known to this
system (onboarded, or with a reserved username). The workflow plans access
again from the new attributes, grants what is new (with approvals where the
policy asks), revokes what the new role no longer justifies and keeps
temporary grants until they expire. A move sent during onboarding is applied
after it; a person being offboarded is refused.

Sending the same change again starts nothing: the command reports the run
that applied it or still applies it.`,
		Example: `  starter move --roster deployments/demo/roster.csv --employee-id E100002
  starter move -f person.json --wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := m.person.load(cmd)
			if err != nil {
				return err
			}
			return m.run(cmd, opts, p)
		},
	}
	m.person.bindPersonFlags(cmd)
	cmd.Flags().BoolVar(&m.wait, "wait", false, "wait for the role change to finish and print its result")
	return cmd
}

func (m *moveOptions) run(cmd *cobra.Command, opts *rootOptions, p hr.Person) error {
	ctx := cmd.Context()
	c, cfg, err := opts.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := m.checkMovable(ctx, c, cfg, p.EmployeeID); err != nil {
		return err
	}
	key := workflows.MoverChangeKey(p)
	id := workflows.MoverID(p.EmployeeID, key)
	known, prevRun, err := m.known(ctx, c, p.EmployeeID, id)
	if err != nil {
		return err
	}
	receipt, err := submitMove(ctx, c, cfg, workflows.MoveSubmission{
		Move: workflows.MoverInput{Person: p, ChangeKey: key}, Known: known,
	})
	if err != nil {
		return fmt.Errorf("queue role change of %s: %w", p.EmployeeID, err)
	}
	if !receipt.New {
		return m.report(ctx, opts, c, cfg, p.EmployeeID, id)
	}
	fmt.Fprintf(opts.out, "Started role change of %s\n  workflow: %s\n  order:    %s (runs after any earlier role change of the person)\n  watch:    %s\n",
		p.EmployeeID, id, workflows.PersonEventsID(p.EmployeeID), cfg.RunURL(id, ""))
	if !m.wait {
		return nil
	}
	runID, err := awaitRun(ctx, c, id, prevRun)
	if err != nil {
		return fmt.Errorf("role change of %s: %w", p.EmployeeID, err)
	}
	var res workflows.MoverResult
	if err := c.GetWorkflow(ctx, id, runID).Get(ctx, &res); err != nil {
		return fmt.Errorf("role change of %s failed: %w", p.EmployeeID, err)
	}
	printMoverResult(opts, res)
	return nil
}

// submitMove hands the change to the person's sequencer, starting it if
// none runs, and returns as soon as the change is queued: the sequencer,
// not visibility, orders the person's role changes.
func submitMove(ctx context.Context, c client.Client, cfg config.Config, sub workflows.MoveSubmission) (workflows.MoveReceipt, error) {
	eid := sub.Move.Person.EmployeeID
	start := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       workflows.PersonEventsID(eid),
		TaskQueue:                cfg.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            "Role changes of " + eid + ", one at a time",
	}, workflows.PersonEvents, workflows.PersonEventsInput{EmployeeID: eid})
	h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   workflows.UpdateSubmitMove,
			Args:         []any{sub},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		return workflows.MoveReceipt{}, err
	}
	var r workflows.MoveReceipt
	if err := h.Get(ctx, &r); err != nil {
		return workflows.MoveReceipt{}, err
	}
	return r, nil
}

// awaitRun waits until the mover id has a run other than prevRun (the one
// it had before the change was queued) and returns it.
func awaitRun(ctx context.Context, c client.Client, id, prevRun string) (string, error) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		desc, err := c.DescribeWorkflow(ctx, id, "")
		var nf *serviceerror.NotFound
		switch {
		case err == nil && desc.WorkflowExecution.RunID != prevRun:
			return desc.WorkflowExecution.RunID, nil
		case err != nil && !errors.As(err, &nf):
			return "", fmt.Errorf("look up %s: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("wait for %s to start: %w", id, ctx.Err())
		case <-tick.C:
		}
	}
}

// checkMovable refuses, before anything starts, an employee this system
// never provisioned and one who is being offboarded.
func (m *moveOptions) checkMovable(ctx context.Context, c client.Client, cfg config.Config, employeeID string) error {
	off, err := describe(ctx, c, workflows.OffboardingID(employeeID))
	var nf *serviceerror.NotFound
	switch {
	case err == nil && !(off.status == "canceled" && off.state == workflows.StateRetracted):
		return fmt.Errorf("employee_id: %s is being offboarded (%s, %s): a leaver is not moved; nothing started", employeeID, off.status, orDash(off.state))
	case err != nil && !errors.As(err, &nf):
		return fmt.Errorf("look up the offboarding of %s: %w", employeeID, err)
	}
	_, err = c.DescribeWorkflow(ctx, workflows.OnboardingID(employeeID), "")
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &nf):
		return fmt.Errorf("look up the onboarding of %s: %w", employeeID, err)
	}
	ok, err := m.hasUsername(ctx, cfg, employeeID)
	if err != nil {
		return fmt.Errorf("cannot tell whether %s is known (no onboarding run; username store: %w)", employeeID, err)
	}
	if !ok {
		return fmt.Errorf("employee_id: unknown employee %s: never onboarded by this system and no username reserved; hire them first, nothing started", employeeID)
	}
	return nil
}

// known tells whether the change of id already ran or runs, as far as the
// server shows: running, or completed with no later role change of the
// person (a change back, A -> B -> A, is new). It also returns the run id
// has now, so --wait can tell the new run from it.
func (m *moveOptions) known(ctx context.Context, c client.Client, employeeID, id string) (bool, string, error) {
	desc, err := c.DescribeWorkflow(ctx, id, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return false, "", nil
	case err != nil:
		return false, "", fmt.Errorf("look up role change %s: %w", id, err)
	}
	runID := desc.WorkflowExecution.RunID
	switch {
	case desc.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return true, runID, nil
	case desc.Status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED || desc.WorkflowCloseTime == nil:
		return false, runID, nil
	}
	query := fmt.Sprintf("%s = '%s' AND %s = '%s' AND StartTime > '%s'",
		workflows.AttrEmployeeID.GetName(), employeeID, workflows.AttrLifecycleEvent.GetName(), workflows.EventMover,
		desc.WorkflowCloseTime.UTC().Format(time.RFC3339Nano))
	resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, PageSize: 1})
	if err != nil {
		return false, "", fmt.Errorf("list later role changes of %s: %w", employeeID, err)
	}
	return len(resp.GetExecutions()) == 0, runID, nil
}

// report tells the user the change already ran or runs, which is not an
// error: a repeated HR event must change nothing.
func (m *moveOptions) report(ctx context.Context, opts *rootOptions, c client.Client, cfg config.Config, employeeID, id string) error {
	info, err := describe(ctx, c, id)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		// Queued behind an earlier change of the person: not started yet.
		fmt.Fprintf(opts.out, "Role change of %s is already in progress (queued); nothing new started.\n  workflow: %s\n  watch:    %s\n",
			employeeID, id, cfg.RunURL(id, ""))
		if !m.wait {
			return nil
		}
		runID, err := awaitRun(ctx, c, id, "")
		if err != nil {
			return fmt.Errorf("role change of %s: %w", employeeID, err)
		}
		var res workflows.MoverResult
		if err := c.GetWorkflow(ctx, id, runID).Get(ctx, &res); err != nil {
			return fmt.Errorf("role change of %s failed: %w", employeeID, err)
		}
		printMoverResult(opts, res)
		return nil
	}
	if err != nil {
		return fmt.Errorf("role change %s already exists but cannot be described: %w", id, err)
	}
	state := "already applied"
	if info.running {
		state = "already in progress"
	}
	fmt.Fprintf(opts.out, "Role change of %s is %s (%s, %s); nothing new started.\n  workflow: %s\n  watch:    %s\n",
		employeeID, state, info.status, orDash(info.state), id, cfg.RunURL(id, info.runID))
	if m.wait && info.running {
		var res workflows.MoverResult
		if err := c.GetWorkflow(ctx, id, info.runID).Get(ctx, &res); err != nil {
			return fmt.Errorf("role change of %s failed: %w", employeeID, err)
		}
		printMoverResult(opts, res)
	}
	return nil
}

func printMoverResult(opts *rootOptions, res workflows.MoverResult) {
	fmt.Fprintf(opts.out, "Moved %s (%s) under policy %s\n", res.EmployeeID, res.Username, shortVersion(res.PolicyVersion))
	list := func(label string, refs []string) {
		if len(refs) > 0 {
			fmt.Fprintf(opts.out, "  %-10s %s\n", label, strings.Join(refs, ", "))
		}
	}
	refs := func(rs []activities.GrantRef) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = r.String()
		}
		return out
	}
	list("created:", res.CreatedAccounts)
	list("granted:", refs(res.Granted))
	list("revoked:", refs(res.Revoked))
	list("kept:", refs(res.Kept))
	list("unmanaged:", refs(res.Unmanaged))
	for _, a := range res.Approvals {
		fmt.Fprintf(opts.out, "  approval   %s: %s %s\n", a.ID, a.State, a.Reason)
	}
	for _, d := range res.Deferred {
		fmt.Fprintf(opts.out, "  not granted: %s/%s (%s)\n", d.Application, d.Entitlement, d.Reason)
	}
	for _, n := range res.NotRevoked {
		fmt.Fprintf(opts.out, "  NOT revoked: %s\n", n)
	}
}
