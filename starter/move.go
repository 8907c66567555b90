package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/workflows"
)

type moveOptions struct {
	person hireOptions
}

func newMoveCmd(opts *rootOptions) *cobra.Command {
	return newMoveCmdWith(opts, &moveOptions{person: hireOptions{people: openStorePeople}})
}

func newMoveCmdWith(opts *rootOptions, m *moveOptions) *cobra.Command {
	m.person.kind = events.TypeMove
	cmd := &cobra.Command{
		Use:   "move",
		Short: "Apply a role change: new department, title, manager, location or type",
		Long: `Queue a role change of one person with their new HR attributes.

The change goes to the person's sequencer (workflow person-<ID>), which runs
their role changes one at a time, in the order they arrived, each as a mover
workflow (mover-<ID>-<change key>).

The person comes from flags, from a JSON file (-f person.json) or from an HR
roster (--roster FILE --employee-id ID), like hire, and must be known: in
the HR roster file, in the synced roster, onboarded by this system or with
a reserved username. A new manager must be known the same way. The workflow
plans access again from the new attributes, grants what is new (with
approvals where the policy asks), revokes what the new role no longer
justifies and keeps temporary grants until they expire. A move sent during
onboarding is applied after it; a person being offboarded is refused.

Sending the same change again starts nothing: the command reports the run
that applied it or still applies it.
` + fmt.Sprintf(personFileHelp, events.TypeMove),
		Example: `  starter move --roster deployments/demo/roster.csv --employee-id E100002
  starter move -f person.json --wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ev, names, err := m.person.load()
			if err != nil {
				return err
			}
			return m.run(cmd.Context(), opts, ev, names)
		},
	}
	m.person.bindPersonFlags(cmd)
	cmd.Flags().BoolVar(&m.person.wait, "wait", false, "wait for the role change to finish and print its result")
	return cmd
}

func (m *moveOptions) run(ctx context.Context, opts *rootOptions, ev events.Event, names map[string]string) error {
	r, c, _, err := startEvent(ctx, opts, m.person.peopleOpener(), ev)
	if err != nil {
		return m.person.source(withFlagNames(err, names))
	}
	defer c.Close()
	eid, id := r.EmployeeID, r.WorkflowID
	var runID string
	switch {
	case r.Outcome == events.OutcomeQueued:
		fmt.Fprintf(opts.out, "Started role change of %s\n  workflow: %s\n  order:    %s (runs after any earlier role change of the person)\n  watch:    %s\n",
			eid, id, workflows.PersonEventsID(eid), r.URL)
		if !m.person.wait {
			return nil
		}
		if runID, err = awaitRun(ctx, c, id, r.PreviousRunID); err != nil {
			return fmt.Errorf("role change of %s: %w", eid, err)
		}
	default:
		// A repeated change is not an error: a repeated HR event must
		// change nothing.
		fmt.Fprintf(opts.out, "Role change of %s is %s; nothing new started.\n  workflow: %s\n  watch:    %s\n",
			eid, r.Detail, id, r.URL)
		switch {
		case !m.person.wait:
			return nil
		case r.Status == "queued":
			// Queued behind an earlier change of the person: not started yet.
			if runID, err = awaitRun(ctx, c, id, ""); err != nil {
				return fmt.Errorf("role change of %s: %w", eid, err)
			}
		case r.Status == "running":
			runID = r.RunID
		default:
			return nil
		}
	}
	var res workflows.MoverResult
	if err := c.GetWorkflow(ctx, id, runID).Get(ctx, &res); err != nil {
		return fmt.Errorf("role change of %s failed: %w", eid, err)
	}
	printMoverResult(opts, res)
	return nil
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
