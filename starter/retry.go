package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/workflows"
)

func newRetryCmd(opts *rootOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "retry EMPLOYEE_ID",
		Short: "Make a leaver's failing steps try again now",
		Long: `Ask a running offboarding to try every step that waits to be tried
again (an application that was down, a disable the application ignored)
at once, instead of at its next scheduled try, which is up to 10 minutes
away, and up to 6 hours once a step has failed for a day. Send it after
fixing the application. A step that still fails backs off from the start
again.

It is refused, and nothing is sent, when the person has no running
offboarding or nothing in it waits to be tried again.`,
		Example: `  starter retry E100001`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return retryNow(cmd.Context(), opts, args[0])
		},
	}
}

func retryNow(ctx context.Context, opts *rootOptions, employeeID string) error {
	if !hr.ValidEmployeeID(employeeID) {
		return fmt.Errorf("employee ID must be E followed by 6 digits, got %q", clip(employeeID))
	}
	c, _, err := opts.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.OffboardingID(employeeID)
	st, err := runningOffboarding(ctx, c, employeeID, id)
	if err != nil {
		return err
	}
	var waiting, permanent []string
	for _, p := range st.Problems {
		line := fmt.Sprintf("%s: %s: %s", p.Application, p.Step, p.Error)
		if p.Permanent {
			permanent = append(permanent, line)
		} else {
			waiting = append(waiting, line)
		}
	}
	if len(waiting) == 0 {
		msg := fmt.Sprintf("nothing in the offboarding of %s waits to be tried again (state %s)", employeeID, st.State)
		if len(permanent) > 0 {
			msg += "; these failed for good and need a fix in the input: " + strings.Join(permanent, "; ")
		}
		return errors.New(msg)
	}
	if err := c.SignalWorkflow(ctx, id, "", workflows.SignalRetryNow, nil); err != nil {
		return fmt.Errorf("ask %s to try again: %w", id, err)
	}
	fmt.Fprintf(opts.out, "Asked %s to try again now:\n", id)
	for _, w := range waiting {
		fmt.Fprintf(opts.out, "  %s\n", w)
	}
	fmt.Fprintf(opts.out, "Follow it with `starter status %s`.\n", employeeID)
	return nil
}

// runningOffboarding reads the state of the person's offboarding, which
// must be running.
func runningOffboarding(ctx context.Context, c client.Client, employeeID, id string) (workflows.OffboardingState, error) {
	run, err := describe(ctx, c, id)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return workflows.OffboardingState{}, fmt.Errorf("%s has no offboarding (start one with `starter terminate %s`)", employeeID, employeeID)
	case err != nil:
		return workflows.OffboardingState{}, fmt.Errorf("read %s: %w", id, err)
	case !run.running:
		return workflows.OffboardingState{}, fmt.Errorf("the offboarding of %s has ended (%s): nothing to try again", employeeID, run.status)
	}
	v, err := c.QueryWorkflow(ctx, id, run.runID, workflows.QueryState)
	if err != nil {
		return workflows.OffboardingState{}, fmt.Errorf("read the state of %s (is the worker running?): %w", id, err)
	}
	var st workflows.OffboardingState
	if err := v.Get(&st); err != nil {
		return workflows.OffboardingState{}, fmt.Errorf("read the state of %s: %w", id, err)
	}
	return st, nil
}
