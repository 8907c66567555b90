package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/policy"
	"github.com/provisio-dev/provisio/workflows"
)

// accessTarget is the person and entitlement every access command names.
type accessTarget struct {
	employeeID string
	ref        policy.Ref
}

// parseAccessTarget validates EMPLOYEE_ID APP/ENTITLEMENT before anything
// talks to the server.
func parseAccessTarget(args []string) (accessTarget, error) {
	if !hr.ValidEmployeeID(args[0]) {
		return accessTarget{}, fmt.Errorf("EMPLOYEE_ID: must be an employee ID, E followed by 6 digits, got %q", args[0])
	}
	ref, err := events.ParseEntitlement(args[1])
	if err != nil {
		return accessTarget{}, fmt.Errorf("APPLICATION/ENTITLEMENT: %w", err)
	}
	return accessTarget{employeeID: args[0], ref: ref}, nil
}

func (a accessTarget) workflowID() string {
	return workflows.TemporaryAccessID(a.employeeID, a.ref.Application, a.ref.Entitlement)
}

// parseAccessDuration reads "30d", "8h", "1d12h" as events.ParseDuration
// does; empty is zero (the default).
func parseAccessDuration(s string) (time.Duration, error) {
	d, err := events.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("--duration: %w", err)
	}
	return d, nil
}

func checkActor(flag, id string) error {
	if id != "" && !hr.ValidEmployeeID(id) {
		return fmt.Errorf("--%s: must be an employee ID, E followed by 6 digits, got %q", flag, id)
	}
	return nil
}

// requestAccessFlags names the argument or flag each field of a
// request-access event comes from.
var requestAccessFlags = map[string]string{
	"employee_id": "EMPLOYEE_ID", "entitlement": "APPLICATION/ENTITLEMENT", "duration": "--duration",
	"justification": "--justification", "requested_by": "--as",
}

type requestAccessOptions struct {
	file, duration, justification, as string
	// people checks the employee; replaceable so tests need no store.
	people openPeople
}

func newRequestAccessCmd(opts *rootOptions) *cobra.Command {
	return newRequestAccessCmdWith(opts, &requestAccessOptions{people: openStorePeople})
}

func newRequestAccessCmdWith(opts *rootOptions, o *requestAccessOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "request-access EMPLOYEE_ID APPLICATION/ENTITLEMENT | -f FILE",
		Short: "Request temporary access to one entitlement",
		Long: `Start the temporary-access workflow of one person and entitlement.

The person must be known (HR roster file, synced roster, onboarded or with
a reserved username). The duration defaults to 90 days and is capped by the
policy's max_duration for the entitlement. Approvers named by the policy
decide with "starter approve"; the grant is revoked at the expiry, after a
reminder. Asking again while a grant runs starts nothing new.

Instead of the arguments and flags, -f FILE reads the event the webhook
takes ("type" may be left out; duration, justification and requested_by
are optional; no other field is accepted):

  {"type": "request-access", "employee_id": "E100002",
   "entitlement": "postgres/prod_admin", "duration": "8h",
   "justification": "incident 42", "requested_by": "E100008"}`,
		Example: `  starter request-access E100002 postgres/prod_admin --duration 8h --justification "incident 42"
  starter request-access E100002 ldap/vpn --duration 30d --as E100008
  starter request-access -f request.json`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.file != "" && len(args) > 0:
				return errors.New("give EMPLOYEE_ID APPLICATION/ENTITLEMENT or -f FILE, not both")
			case o.file == "":
				return cobra.ExactArgs(2)(cmd, args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ev, names, err := o.event(args)
			if err != nil {
				return err
			}
			return o.run(cmd.Context(), opts, ev, names)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.file, "file", "f", "", "read the request-access event from a JSON file")
	f.StringVar(&o.duration, "duration", "", "how long, e.g. 30d, 8h, 1d12h (default 90d, capped by policy)")
	f.StringVar(&o.justification, "justification", "", "why the access is needed (kept for the audit trail)")
	f.StringVar(&o.as, "as", "", "employee ID of who asks (default the person)")
	for _, flag := range []string{"duration", "justification", "as"} {
		cmd.MarkFlagsMutuallyExclusive("file", flag)
	}
	return cmd
}

// event builds the request from the arguments and flags or from -f, and
// checks its shape before anything is dialled.
func (o *requestAccessOptions) event(args []string) (events.Event, map[string]string, error) {
	if o.file != "" {
		ev, err := readEventFile(o.file, events.TypeRequestAccess)
		if err != nil {
			return ev, nil, err
		}
		if err := ev.Validate(); err != nil {
			return ev, nil, fmt.Errorf("%s: %w", o.file, err)
		}
		return ev, nil, nil
	}
	ev := events.Event{Type: events.TypeRequestAccess, EmployeeID: args[0], Entitlement: args[1],
		Duration: o.duration, Justification: o.justification, RequestedBy: o.as}
	if err := ev.Validate(); err != nil {
		return ev, nil, withFlagNames(err, requestAccessFlags)
	}
	return ev, requestAccessFlags, nil
}

func (o *requestAccessOptions) run(ctx context.Context, opts *rootOptions, ev events.Event, names map[string]string) error {
	r, c, _, err := startEvent(ctx, opts, o.people, ev)
	if err != nil {
		if o.file != "" && events.IsInvalid(err) {
			return fmt.Errorf("%s: %w", o.file, err)
		}
		return withFlagNames(err, names)
	}
	defer c.Close()
	if r.Outcome == events.OutcomeExisting {
		fmt.Fprintf(opts.out, "Temporary access %s for %s is %s; nothing new started.\n  workflow: %s\n  watch:    %s\n",
			ev.Entitlement, r.EmployeeID, r.Detail, r.WorkflowID, r.URL)
		return nil
	}
	fmt.Fprintf(opts.out, "Requested %s for %s\n  workflow: %s\n  run:      %s\n  watch:    %s\n",
		ev.Entitlement, r.EmployeeID, r.WorkflowID, r.RunID, r.URL)
	fmt.Fprintf(opts.out, "  approvals, if the policy asks for any: starter pending --approver ID; request ID %s\n", r.RequestID)
	return nil
}

func newExtendAccessCmd(opts *rootOptions) *cobra.Command {
	var duration, justification, as string
	cmd := &cobra.Command{
		Use:   "extend-access EMPLOYEE_ID APPLICATION/ENTITLEMENT --duration D",
		Short: "Move the expiry of held temporary access later",
		Long: `Extend a temporary grant by --duration, counted from its current expiry.
The new expiry may lie at most the policy's max_duration from now. When the
policy says extensions need approval, the extension waits for the same
approvers as the grant (decide with "starter approve").`,
		Example: `  starter extend-access E100002 postgres/prod_admin --duration 4h --as E100002`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, err := parseAccessTarget(args)
			if err != nil {
				return err
			}
			if duration == "" {
				return errors.New("--duration is required, e.g. --duration 30d")
			}
			d, err := parseAccessDuration(duration)
			if err != nil {
				return err
			}
			if err := checkActor("as", as); err != nil {
				return err
			}
			if as == "" {
				as = target.employeeID
			}
			var res workflows.ExtendResult
			if err := sendAccessUpdate(cmd.Context(), opts, target, workflows.UpdateExtend,
				workflows.ExtendInput{Duration: d, RequestedBy: as, Justification: justification}, &res); err != nil {
				return err
			}
			e := res.Extension
			switch e.State {
			case workflows.ExtensionApplied:
				fmt.Fprintf(opts.out, "Extended %s for %s: now ends at %s (was %s)\n", target.ref, target.employeeID,
					localTime(e.ExpiresAfter), localTime(e.ExpiresBefore))
			default:
				fmt.Fprintf(opts.out, "Extension of %s for %s by %s waits for approval\n  request ID: %s\n", target.ref, target.employeeID,
					duration, res.RequestID)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&duration, "duration", "", "how much longer, e.g. 30d, 8h (required)")
	f.StringVar(&justification, "justification", "", "why the extension is needed")
	f.StringVar(&as, "as", "", "employee ID of who asks (default the person)")
	return cmd
}

func newRevokeAccessCmd(opts *rootOptions) *cobra.Command {
	var reason, as string
	var wait bool
	cmd := &cobra.Command{
		Use:   "revoke-access EMPLOYEE_ID APPLICATION/ENTITLEMENT",
		Short: "End temporary access now",
		Long: `Revoke a temporary grant before its expiry, or withdraw a request that
still waits for approval. The command waits (up to a minute) until the
revocation is done and prints how the grant ended.`,
		Example: `  starter revoke-access E100002 postgres/prod_admin --reason "incident closed" --as E100008`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, err := parseAccessTarget(args)
			if err != nil {
				return err
			}
			if err := checkActor("as", as); err != nil {
				return err
			}
			if as == "" {
				as = target.employeeID
			}
			if len(reason) > workflows.MaxCommentLen {
				return fmt.Errorf("--reason has %d bytes; at most %d are kept", len(reason), workflows.MaxCommentLen)
			}
			if err := sendAccessUpdate(cmd.Context(), opts, target, workflows.UpdateRevoke,
				workflows.RevokeInput{RequestedBy: as, Reason: reason}, &workflows.RevokeResult{}); err != nil {
				return err
			}
			fmt.Fprintf(opts.out, "Revoking %s for %s\n", target.ref, target.employeeID)
			if !wait {
				return nil
			}
			return awaitAccessEnd(cmd.Context(), opts, target)
		},
	}
	f := cmd.Flags()
	f.StringVar(&reason, "reason", "", "why (kept for the audit trail)")
	f.StringVar(&as, "as", "", "employee ID of who revokes (default the person)")
	f.BoolVar(&wait, "wait", true, "wait until the access is revoked")
	return cmd
}

// sendAccessUpdate sends an update to the person's running grant and
// decodes its result into out.
func sendAccessUpdate(ctx context.Context, opts *rootOptions, target accessTarget, name string, in, out any) error {
	c, _, err := opts.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, decisionTimeout)
	defer cancel()
	id := target.workflowID()
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: id, UpdateName: name, Args: []any{in}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, out)
	}
	var notFound *serviceerror.NotFound
	var ae *temporal.ApplicationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &notFound):
		return fmt.Errorf("%s refused: %s for %s is not requested or held (no running %s)", name, target.ref, target.employeeID, id)
	case errors.As(err, &ae):
		return fmt.Errorf("%s refused: %s", name, ae.Message())
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s of %s for %s: no answer within %s: is the worker running?", name, target.ref, target.employeeID, decisionTimeout)
	default:
		return fmt.Errorf("%s of %s for %s: %w", name, target.ref, target.employeeID, err)
	}
}

// awaitAccessEnd waits for the grant's run to finish and prints its end.
func awaitAccessEnd(ctx context.Context, opts *rootOptions, target accessTarget) error {
	c, _, err := opts.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var res workflows.TemporaryAccessResult
	if err := c.GetWorkflow(ctx, target.workflowID(), "").Get(ctx, &res); err != nil {
		return fmt.Errorf("revocation of %s for %s did not finish: %w", target.ref, target.employeeID, err)
	}
	fmt.Fprintf(opts.out, "  %s at %s\n", res.State, localTime(res.EndedAt))
	return nil
}
