package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

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
		return accessTarget{}, fmt.Errorf("employee ID must be E followed by 6 digits, got %q", args[0])
	}
	ref, err := policy.ParseRef(args[1])
	if err != nil {
		return accessTarget{}, fmt.Errorf("entitlement %q: want APPLICATION/ENTITLEMENT, e.g. postgres/prod_admin: %w", args[1], err)
	}
	if _, _, _, err := workflows.ParseApprovalRequestID(workflows.ApprovalRequestID("x", ref.Application, ref.Entitlement)); err != nil {
		return accessTarget{}, fmt.Errorf("entitlement %q: names are letters, digits, '.', '_' or '-'", args[1])
	}
	return accessTarget{employeeID: args[0], ref: ref}, nil
}

func (a accessTarget) workflowID() string {
	return workflows.TemporaryAccessID(a.employeeID, a.ref.Application, a.ref.Entitlement)
}

// parseAccessDuration reads "30d", "8h", "1d12h"; empty is zero (the
// default). Zero or negative is refused when given.
func parseAccessDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := policy.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("--duration %q: %w (use e.g. 30d, 8h or 1d12h)", s, err)
	}
	if d <= 0 {
		return 0, fmt.Errorf("--duration %q: must be positive", s)
	}
	return d, nil
}

func checkActor(flag, id string) error {
	if id != "" && !hr.ValidEmployeeID(id) {
		return fmt.Errorf("--%s must be an employee ID (E followed by 6 digits), got %q", flag, id)
	}
	return nil
}

func newRequestAccessCmd(opts *rootOptions) *cobra.Command {
	var duration, justification, as string
	cmd := &cobra.Command{
		Use:   "request-access EMPLOYEE_ID APPLICATION/ENTITLEMENT",
		Short: "Request temporary access to one entitlement",
		Long: `Start the temporary-access workflow of one person and entitlement.

The duration defaults to 90 days and is capped by the policy's max_duration
for the entitlement. Approvers named by the policy decide with "starter
approve"; the grant is revoked at the expiry, after a reminder. Asking
again while a grant runs starts nothing new.`,
		Example: `  starter request-access E100002 postgres/prod_admin --duration 8h --justification "incident 42"
  starter request-access E100002 ldap/vpn --duration 30d --as E100008`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			target, err := parseAccessTarget(args)
			if err != nil {
				return err
			}
			d, err := parseAccessDuration(duration)
			if err != nil {
				return err
			}
			if err := checkActor("as", as); err != nil {
				return err
			}
			if len(justification) > workflows.MaxCommentLen {
				return fmt.Errorf("--justification has %d bytes; at most %d are kept", len(justification), workflows.MaxCommentLen)
			}
			return runRequestAccess(cmd.Context(), opts, target, workflows.TemporaryAccessInput{
				EmployeeID: target.employeeID, Application: target.ref.Application, Entitlement: target.ref.Entitlement,
				Duration: d, RequestedBy: as, Justification: justification,
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&duration, "duration", "", "how long, e.g. 30d, 8h, 1d12h (default 90d, capped by policy)")
	f.StringVar(&justification, "justification", "", "why the access is needed (kept for the audit trail)")
	f.StringVar(&as, "as", "", "employee ID of who asks (default the person)")
	return cmd
}

func runRequestAccess(ctx context.Context, opts *rootOptions, target accessTarget, in workflows.TemporaryAccessInput) error {
	c, cfg, err := opts.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	id := target.workflowID()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: cfg.TaskQueue,
		// A new grant may follow one that ended; one that runs is reported.
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		StaticSummary:                            "Temporary access " + target.ref.String() + " for " + target.employeeID,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.AttrEmployeeID.ValueSet(target.employeeID),
			workflows.AttrLifecycleEvent.ValueSet(workflows.EventTemporaryAccess),
			workflows.AttrLifecycleState.ValueSet(workflows.StatePlanning),
		),
	}, workflows.TemporaryAccess, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		fmt.Fprintf(opts.out, "Temporary access %s for %s is already requested or held; nothing new started.\n  workflow: %s\n  watch:    %s\n",
			target.ref, target.employeeID, id, cfg.RunURL(id, started.RunId))
		return nil
	}
	if err != nil {
		return fmt.Errorf("request %s for %s: %w", target.ref, target.employeeID, err)
	}
	fmt.Fprintf(opts.out, "Requested %s for %s\n  workflow: %s\n  run:      %s\n  watch:    %s\n",
		target.ref, target.employeeID, id, run.GetRunID(), cfg.RunURL(id, run.GetRunID()))
	fmt.Fprintf(opts.out, "  approvals, if the policy asks for any: starter pending --approver ID; request ID %s\n",
		workflows.ApprovalRequestID(id, target.ref.Application, target.ref.Entitlement))
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
