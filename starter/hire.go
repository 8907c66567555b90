package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/workflows"
)

type hireOptions struct {
	file       string
	roster     string
	startDate  string
	endDate    string
	wait       bool
	person     hr.Person
	attributes map[string]string
	// verb names the command in refusals ("hire" when empty).
	verb string
}

func newHireCmd(opts *rootOptions) *cobra.Command {
	h := &hireOptions{}
	cmd := &cobra.Command{
		Use:   "hire",
		Short: "Start onboarding a new joiner",
		Long: `Start the onboarding workflow of one person.

The person comes from flags, from a JSON file (-f person.json, fields as in
the roster header), or from an HR roster (--roster FILE --employee-id ID).
The record is validated before anything starts. Hiring the same employee
again does not start a second run: the command reports the existing one.`,
		Example: `  starter hire --roster deployments/demo/roster.csv --employee-id E100001
  starter hire -f person.json --wait
  starter hire --employee-id E100999 --given-name Ada --family-name Lovelace \
    --email ada.lovelace@example.com --department Engineering --title Engineer \
    --location Berlin --start-date 2026-12-01`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := h.load(cmd)
			if err != nil {
				return err
			}
			return runHire(cmd, opts, p, h.wait)
		},
	}
	h.bindPersonFlags(cmd)
	cmd.Flags().BoolVar(&h.wait, "wait", false, "wait for the onboarding to finish and print its result")
	return cmd
}

// bindPersonFlags adds the flags a person is read from (flags, -f JSON or
// --roster); hire and move share them.
func (h *hireOptions) bindPersonFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&h.file, "file", "f", "", "read the person from a JSON file")
	f.StringVar(&h.roster, "roster", "", "read the person from an HR roster CSV (with --employee-id)")
	f.StringVar(&h.person.EmployeeID, "employee-id", "", "HR employee ID (E + 6 digits)")
	f.StringVar(&h.person.GivenName, "given-name", "", "given name")
	f.StringVar(&h.person.FamilyName, "family-name", "", "family name")
	f.StringVar(&h.person.Email, "email", "", "work e-mail address")
	f.StringVar(&h.person.Department, "department", "", "department")
	f.StringVar(&h.person.Title, "title", "", "job title")
	f.StringVar(&h.person.ManagerID, "manager-id", "", "employee ID of the manager")
	f.StringVar(&h.person.Location, "location", "", "location")
	f.StringVar(&h.person.EmploymentType, "type", hr.TypeEmployee, "employment type: employee or contractor")
	f.StringVar(&h.startDate, "start-date", "", "first working day, YYYY-MM-DD (default today)")
	f.StringVar(&h.endDate, "end-date", "", "last day of a fixed-term contract, YYYY-MM-DD")
	f.StringToStringVar(&h.attributes, "attr", nil, "extra HR attribute key=value (repeatable)")
	cmd.MarkFlagsMutuallyExclusive("file", "roster")
}

// load builds the person from exactly one source and validates it.
func (h *hireOptions) load(cmd *cobra.Command) (hr.Person, error) {
	var p hr.Person
	switch {
	case h.file != "":
		data, err := os.ReadFile(h.file)
		if err != nil {
			return p, fmt.Errorf("read person: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return p, fmt.Errorf("%s: not a person record: %w", h.file, err)
		}
		if p.Status == "" {
			p.Status = hr.StatusActive
		}
	case h.roster != "":
		if h.person.EmployeeID == "" {
			return p, errors.New("--roster needs --employee-id to pick the person")
		}
		data, err := os.ReadFile(h.roster)
		if err != nil {
			return p, fmt.Errorf("read roster: %w", err)
		}
		if p, err = hr.FindInRoster(data, h.person.EmployeeID); err != nil {
			return p, err
		}
	default:
		p = h.person
		p.Attributes = h.attributes
		p.Status = hr.StatusActive
		var err error
		if h.startDate == "" {
			h.startDate = time.Now().UTC().Format(hr.DateLayout)
		}
		if p.StartDate, err = hr.ParseDate(h.startDate); err != nil {
			return p, fmt.Errorf("--start-date: %w", err)
		}
		if p.EndDate, err = hr.ParseDate(h.endDate); err != nil {
			return p, fmt.Errorf("--end-date: %w", err)
		}
	}
	if p.Status == hr.StatusTerm {
		verb := h.verb
		if verb == "" {
			verb = "hire"
		}
		return p, fmt.Errorf("employee %s has status terminated: refusing to %s", p.EmployeeID, verb)
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("invalid person record, nothing started:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	return p, nil
}

func runHire(cmd *cobra.Command, opts *rootOptions, p hr.Person, wait bool) error {
	ctx := cmd.Context()
	c, cfg, err := opts.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	id := workflows.OnboardingID(p.EmployeeID)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                cfg.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Without this the SDK hands back the existing run as if it were new;
		// the CLI must tell HR that nothing new started.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		StaticSummary:                            "Onboarding of " + p.EmployeeID,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.AttrEmployeeID.ValueSet(p.EmployeeID),
			workflows.AttrLifecycleEvent.ValueSet(workflows.EventJoiner),
			workflows.AttrLifecycleState.ValueSet(workflows.StatePlanning),
		),
	}, workflows.Onboarding, workflows.OnboardingInput{Person: p})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return reportExistingHire(cmd, opts, c, p.EmployeeID, id)
	}
	if err != nil {
		return fmt.Errorf("start onboarding of %s: %w", p.EmployeeID, err)
	}
	fmt.Fprintf(opts.out, "Started onboarding of %s\n  workflow: %s\n  run:      %s\n  watch:    %s\n",
		p.EmployeeID, id, run.GetRunID(), cfg.RunURL(id, run.GetRunID()))
	if !wait {
		return nil
	}
	var res workflows.OnboardingResult
	if err := run.Get(ctx, &res); err != nil {
		return fmt.Errorf("onboarding of %s failed: %w", p.EmployeeID, err)
	}
	printOnboardingResult(opts, res)
	return nil
}

// reportExistingHire tells the user the hire already ran or runs, which is
// not an error: a repeated HR event must change nothing.
func reportExistingHire(cmd *cobra.Command, opts *rootOptions, c client.Client, employeeID, id string) error {
	desc, err := c.DescribeWorkflow(cmd.Context(), id, "")
	if err != nil {
		return fmt.Errorf("hire of %s already exists but cannot be described: %w", employeeID, err)
	}
	cfg, _ := opts.config()
	state := "already done"
	if desc.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		state = "already in progress"
	}
	fmt.Fprintf(opts.out, "Hire of %s is %s (%s); nothing new started.\n  workflow: %s\n  watch:    %s\n",
		employeeID, state, statusName(desc.Status), id, cfg.RunURL(id, desc.WorkflowExecution.RunID))
	return nil
}

func printOnboardingResult(opts *rootOptions, res workflows.OnboardingResult) {
	fmt.Fprintf(opts.out, "Onboarded %s as %s (policy %s)\n", res.EmployeeID, res.Username, shortVersion(res.PolicyVersion))
	for _, a := range res.Accounts {
		fmt.Fprintf(opts.out, "  %-10s %-24s %s\n", a.Application, a.Username, strings.Join(a.Entitlements, ", "))
	}
	for _, d := range res.Deferred {
		fmt.Fprintf(opts.out, "  not granted: %s/%s (%s)\n", d.Application, d.Entitlement, d.Reason)
	}
}

func shortVersion(v string) string {
	if len(v) > 12 {
		return v[:12]
	}
	return v
}

func statusName(s enumspb.WorkflowExecutionStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "WORKFLOW_EXECUTION_STATUS_"))
}
