package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/policy"
)

// newPolicyCmd groups the commands that work on the policy file itself.
func newPolicyCmd(opts *rootOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check the access policy file",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newPolicyCheckCmd(opts))
	return cmd
}

// policyCheckReport is `policy check --output json`.
type policyCheckReport struct {
	File     string           `json:"file"`
	Valid    bool             `json:"valid"`
	Version  string           `json:"version,omitempty"`
	Problems []policy.Problem `json:"problems,omitempty"`
}

func newPolicyCheckCmd(opts *rootOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Validate a policy file and list every problem with its line",
		Long: `Validate a policy file the way the worker does before putting it in force.

Every problem is printed as FILE:LINE: what is wrong; how to fix it. The
command exits non-zero if there is any problem, so it can gate a pull
request. FILE defaults to $PROVISIO_POLICY (deployments/demo/policy.yaml).`,
		Example: `  starter policy check deployments/demo/policy.yaml
  starter policy check -o json policy.yaml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			file := opts.policyFile()
			if len(args) == 1 {
				file = args[0]
			}
			p, err := policy.Load(file)
			probs := policy.Problems(err)
			if err != nil && probs == nil {
				return err // the file could not be read at all
			}
			if output == "json" {
				rep := policyCheckReport{File: file, Valid: err == nil, Problems: probs}
				if p != nil {
					rep.Version = p.Version
				}
				if perr := opts.printJSON(rep); perr != nil {
					return perr
				}
			} else if err != nil {
				for _, pr := range probs {
					fmt.Fprintln(opts.errOut, pr.Format(file))
				}
			} else {
				fmt.Fprintf(opts.out, "%s: OK (version %s): %s\n", file, shortVersion(p.Version), summarize(p))
			}
			if err != nil {
				return fmt.Errorf("%s: %d problem(s); the policy was not accepted", file, len(probs))
			}
			return nil
		},
	}
	outputFlag(cmd, &output)
	return cmd
}

func summarize(p *policy.Policy) string {
	ents := 0
	for _, a := range p.Applications {
		ents += len(a.Entitlements)
	}
	return fmt.Sprintf("%d applications, %d entitlements, %d roles, %d rules, %d separation-of-duties sets",
		len(p.Applications), ents, len(p.Roles), len(p.Rules), len(p.SoD))
}

type planOptions struct {
	file   string
	roster string
	policy string
	output string
}

// newPlanCmd is the dry run: what a person would get from the policy, why,
// and which approvals it would need. It changes nothing anywhere.
func newPlanCmd(opts *rootOptions) *cobra.Command {
	po := &planOptions{}
	cmd := &cobra.Command{
		Use:   "plan [EMPLOYEE_ID]",
		Short: "Show what a person would get from the policy, why, and which approvals it needs",
		Long: `Plan the birthright access of one person without changing anything.

The person is looked up in the HR roster ($PROVISIO_ROSTER, default
deployments/demo/roster.csv) or read from a JSON file with -f. The policy is
$PROVISIO_POLICY (default deployments/demo/policy.yaml) or --policy.`,
		Example: `  starter plan E100002
  starter plan -f person.json --output json
  starter plan E100088 --policy my-policy.yaml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(po.output); err != nil {
				return err
			}
			person, err := po.person(opts, args)
			if err != nil {
				return err
			}
			file := po.policy
			if file == "" {
				file = opts.policyFile()
			}
			p, err := policy.Load(file)
			if err != nil {
				return fmt.Errorf("policy: %w", err)
			}
			plan, err := p.Plan(person)
			if err != nil {
				return err
			}
			if po.output == "json" {
				return opts.printJSON(plan)
			}
			printPlan(opts.out, file, person, plan)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&po.file, "file", "f", "", "read the person from a JSON file instead of the roster")
	f.StringVar(&po.roster, "roster", "", "HR roster to look EMPLOYEE_ID up in (default $PROVISIO_ROSTER)")
	f.StringVar(&po.policy, "policy", "", "policy file (default $PROVISIO_POLICY)")
	outputFlag(cmd, &po.output)
	return cmd
}

// person reads the person from exactly one source.
func (po *planOptions) person(opts *rootOptions, args []string) (hr.Person, error) {
	var p hr.Person
	switch {
	case po.file != "" && len(args) > 0:
		return p, errors.New("give either EMPLOYEE_ID or -f FILE, not both")
	case po.file != "":
		data, err := os.ReadFile(po.file)
		if err != nil {
			return p, fmt.Errorf("read person: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return p, fmt.Errorf("%s: not a person record: %w", po.file, err)
		}
		if p.Status == "" {
			p.Status = hr.StatusActive
		}
		return p, nil
	case len(args) == 1:
		roster := po.roster
		if roster == "" {
			roster = opts.rosterFile()
		}
		data, err := os.ReadFile(roster)
		if err != nil {
			return p, fmt.Errorf("read roster: %w", err)
		}
		return hr.FindInRoster(data, args[0])
	}
	return p, errors.New("give the EMPLOYEE_ID to look up in the roster, or -f person.json")
}

func printPlan(w io.Writer, file string, who hr.Person, pl policy.Plan) {
	fmt.Fprintf(w, "Plan for %s (%s, %s, %s, %s)\n", who.EmployeeID, who.Department, who.Title, who.Location, who.EmploymentType)
	fmt.Fprintf(w, "Policy %s, version %s\n\n", file, shortVersion(pl.PolicyVersion))
	if len(pl.Items) == 0 {
		fmt.Fprintln(w, "No access.")
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "APPLICATION\tENTITLEMENT\tRISK\tWHY\tAPPROVALS")
		for _, it := range pl.Items {
			rows := max(len(it.Reasons), len(it.Approvals), 1)
			for i := range rows {
				app, ent, risk := "", "", ""
				if i == 0 {
					app, ent, risk = it.Application, it.Entitlement, string(it.Risk)
					if it.Temporary {
						ent += " (temporary)"
					}
				}
				why, appr := "", ""
				if i < len(it.Reasons) {
					why = it.Reasons[i].String()
				}
				switch {
				case i < len(it.Approvals):
					appr = stepText(it.Approvals[i])
					if i > 0 {
						appr = "then " + appr
					}
				case i == 0:
					appr = "none"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", app, ent, risk, why, appr)
			}
		}
		tw.Flush()
	}

	var notes []string
	for _, it := range pl.Items {
		if it.Temporary {
			ext := "extension needs approval again"
			if !it.ExtensionNeedsApproval {
				ext = "extension needs no new approval"
			}
			notes = append(notes, fmt.Sprintf("%s: temporary, at most %s, reminder %s before the end, %s",
				it.Ref(), policy.FormatDuration(it.MaxDuration), policy.FormatDuration(it.RemindBefore), ext))
		}
		for _, s := range it.Approvals {
			if s.Fallback != "" {
				notes = append(notes, fmt.Sprintf("%s: %s step: %s", it.Ref(), s.Kind, s.Fallback))
			}
		}
	}
	section(w, "Notes", notes)

	var sod []string
	for _, c := range pl.Conflicts {
		refs := make([]string, len(c.Entitlements))
		for i, r := range c.Entitlements {
			refs[i] = r.String()
		}
		line := fmt.Sprintf("%s %s: %s", strings.ToUpper(string(c.Action)), c.SoD, strings.Join(refs, " + "))
		if c.Approval != nil {
			line += " (needs " + stepText(*c.Approval) + ")"
		}
		sod = append(sod, line)
	}
	section(w, "Separation of duties", sod)
	if pl.Leaver != nil {
		when := "now"
		if !pl.Leaver.Date.IsZero() {
			when = pl.Leaver.Date.String()
		}
		section(w, "Leaver", []string{when + ": " + pl.Leaver.Reason})
	}
	section(w, "Warnings", pl.Warnings)
}

func stepText(s policy.ApprovalStep) string {
	if s.Unresolved {
		return fmt.Sprintf("%s: UNRESOLVED", s.Kind)
	}
	return fmt.Sprintf("%s %s (escalate %s, expire %s)", s.Kind, s.ApproverID,
		policy.FormatDuration(s.EscalateAfter), policy.FormatDuration(s.ExpireAfter))
}

func section(w io.Writer, title string, lines []string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s:\n", title)
	for _, l := range lines {
		fmt.Fprintf(w, "  %s\n", l)
	}
}
