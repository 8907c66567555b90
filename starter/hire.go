package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/events"
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
	// kind is the event the person makes: a hire (when empty) or a move.
	kind events.Type
	// people checks managers and employees; replaceable so tests need no
	// store.
	people openPeople
}

// personFlags names the flag each person field comes from, so an error
// about a flag-built person names the flag the user typed.
var personFlags = map[string]string{
	"employee_id": "--employee-id", "given_name": "--given-name", "family_name": "--family-name",
	"email": "--email", "department": "--department", "title": "--title", "manager_id": "--manager-id",
	"location": "--location", "employment_type": "--type", "start_date": "--start-date",
	"end_date": "--end-date", "attributes": "--attr",
}

// personFileHelp documents -f for hire and move.
const personFileHelp = `
The JSON file (-f) holds either the person record alone:

  {"employee_id": "E100999", "given_name": "Ada", "family_name": "Lovelace",
   "email": "ada.lovelace@example.com", "department": "Engineering",
   "title": "Engineer", "manager_id": "E100008", "location": "Berlin",
   "employment_type": "employee", "start_date": "2026-12-01",
   "end_date": "", "status": "active", "attributes": {"cost_center": "42"}}

or the event the webhook takes, {"type": "%s", "person": {...}}. Fields are
those of the roster header; manager_id, end_date, status (default active)
and attributes may be left out; any other field is refused.`

func newHireCmd(opts *rootOptions) *cobra.Command {
	return newHireCmdWith(opts, &hireOptions{people: openStorePeople})
}

func newHireCmdWith(opts *rootOptions, h *hireOptions) *cobra.Command {
	h.kind = events.TypeHire
	cmd := &cobra.Command{
		Use:   "hire",
		Short: "Start onboarding a new joiner",
		Long: `Start the onboarding workflow of one person.

The person comes from flags, from a JSON file (-f person.json), or from an
HR roster (--roster FILE --employee-id ID). The record is validated before
anything starts, and a manager must be someone HR knows (in the roster
file, the synced roster, or onboarded by this system). Hiring the same
employee again does not start a second run: the command reports the
existing one.
` + fmt.Sprintf(personFileHelp, events.TypeHire),
		Example: `  starter hire --roster deployments/demo/roster.csv --employee-id E100001
  starter hire -f person.json --wait
  starter hire --employee-id E100999 --given-name Ada --family-name Lovelace \
    --email ada.lovelace@example.com --department Engineering --title Engineer \
    --location Berlin --start-date 2026-12-01`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ev, names, err := h.load()
			if err != nil {
				return err
			}
			return runHire(cmd.Context(), opts, h, ev, names)
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
	f.StringVarP(&h.file, "file", "f", "", "read the person (or the "+string(h.kind)+" event) from a JSON file")
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

// load builds the event from exactly one source and validates its shape,
// before anything is dialled. names maps the event's fields to the flags
// they came from (nil unless the person came from flags).
func (h *hireOptions) load() (events.Event, map[string]string, error) {
	var ev events.Event
	var names map[string]string
	switch {
	case h.file != "":
		var err error
		if ev, err = readEventFile(h.file, h.kind); err != nil {
			return ev, nil, err
		}
	case h.roster != "":
		if h.person.EmployeeID == "" {
			return ev, nil, errors.New("--roster needs --employee-id to pick the person")
		}
		data, err := os.ReadFile(h.roster)
		if err != nil {
			return ev, nil, fmt.Errorf("read roster: %w", err)
		}
		p, err := hr.FindInRoster(data, h.person.EmployeeID)
		if err != nil {
			return ev, nil, err
		}
		ev = events.Event{Type: h.kind, Person: &p}
	default:
		p := h.person
		p.Attributes = h.attributes
		p.Status = hr.StatusActive
		var err error
		if h.startDate == "" {
			h.startDate = time.Now().UTC().Format(hr.DateLayout)
		}
		if p.StartDate, err = hr.ParseDate(h.startDate); err != nil {
			return ev, nil, fmt.Errorf("--start-date: %w", err)
		}
		if p.EndDate, err = hr.ParseDate(h.endDate); err != nil {
			return ev, nil, fmt.Errorf("--end-date: %w", err)
		}
		ev, names = events.Event{Type: h.kind, Person: &p}, personFlags
	}
	if err := ev.Validate(); err != nil {
		return ev, nil, h.source(withFlagNames(err, names))
	}
	return ev, names, nil
}

// source prefixes a refusal of a file's content with the file's name.
func (h *hireOptions) source(err error) error {
	switch {
	case !events.IsInvalid(err):
		return err
	case h.file != "":
		return fmt.Errorf("%s: %w", h.file, err)
	case h.roster != "":
		return fmt.Errorf("%s: %w", h.roster, err)
	}
	return err
}

// peopleOpener is h.people, plus the --roster file when the person came
// from one.
func (h *hireOptions) peopleOpener() openPeople {
	if h.roster != "" {
		return alsoInRoster(h.people, h.roster)
	}
	return h.people
}

func runHire(ctx context.Context, opts *rootOptions, h *hireOptions, ev events.Event, names map[string]string) error {
	r, c, _, err := startEvent(ctx, opts, h.peopleOpener(), ev)
	if err != nil {
		return h.source(withFlagNames(err, names))
	}
	defer c.Close()
	if r.Outcome == events.OutcomeExisting {
		fmt.Fprintf(opts.out, "Hire of %s is %s; nothing new started.\n  workflow: %s\n  watch:    %s\n",
			r.EmployeeID, r.Detail, r.WorkflowID, r.URL)
		return nil
	}
	fmt.Fprintf(opts.out, "Started onboarding of %s\n  workflow: %s\n  run:      %s\n  watch:    %s\n",
		r.EmployeeID, r.WorkflowID, r.RunID, r.URL)
	if !h.wait {
		return nil
	}
	var res workflows.OnboardingResult
	if err := c.GetWorkflow(ctx, r.WorkflowID, r.RunID).Get(ctx, &res); err != nil {
		return fmt.Errorf("onboarding of %s failed: %w", r.EmployeeID, err)
	}
	printOnboardingResult(opts, res)
	return nil
}

// startEvent dials Temporal, opens the people store and starts ev through
// events.Starter, the path the roster sync and the webhook take too. On
// success the caller owns (and closes) the client, to wait on the run.
func startEvent(ctx context.Context, opts *rootOptions, people openPeople, ev events.Event) (events.Receipt, client.Client, config.Config, error) {
	c, cfg, err := opts.client(ctx)
	if err != nil {
		return events.Receipt{}, nil, cfg, err
	}
	ppl, closePeople, err := people(ctx, cfg)
	if err != nil {
		c.Close()
		return events.Receipt{}, nil, cfg, err
	}
	defer closePeople()
	s := &events.Starter{Client: c, Config: cfg, People: ppl}
	r, err := s.Start(ctx, ev)
	if err != nil {
		c.Close()
		return r, nil, cfg, err
	}
	return r, c, cfg, nil
}

// readEventFile reads the JSON file of a `-f` flag: an event of kind t
// ("type" may be left out), or, for a hire or a move, the person record
// alone. Decoding is as strict as the webhook's.
func readEventFile(path string, t events.Type) (events.Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return events.Event{}, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, events.MaxEventBytes+1))
	if err != nil {
		return events.Event{}, fmt.Errorf("read %s: %w", path, err)
	}
	var ev events.Event
	if t == events.TypeHire || t == events.TypeMove {
		if !looksLikeEvent(data) {
			p, err := events.DecodePerson(bytes.NewReader(data))
			if err != nil {
				return ev, fmt.Errorf("%s: %w", path, err)
			}
			return events.Event{Type: t, Person: &p}, nil
		}
	}
	if ev, err = events.Decode(bytes.NewReader(data)); err != nil {
		return ev, fmt.Errorf("%s: %w", path, err)
	}
	switch ev.Type {
	case "":
		ev.Type = t
	case t:
	default:
		return ev, fmt.Errorf("%s: %w", path, &events.InvalidError{Err: &hr.FieldError{Field: "type",
			Reason: fmt.Sprintf("this file holds a %q event; `starter %s -f` takes %q events", clipType(ev.Type), t, t)}})
	}
	return ev, nil
}

// looksLikeEvent tells an event file (with a "type" or "person" key) from
// a bare person record.
func looksLikeEvent(data []byte) bool {
	var probe map[string]json.RawMessage
	if json.Unmarshal(data, &probe) != nil {
		return false
	}
	_, hasType := probe["type"]
	_, hasPerson := probe["person"]
	return hasType || hasPerson
}

func clipType(t events.Type) string {
	if len(t) > 20 {
		return string(t[:20]) + "..."
	}
	return string(t)
}

// withFlagNames rewrites the field names of a refusal to say which flag
// or argument each came from ("requested_by (--as)"); other errors, and
// refusals of JSON input (names nil), are returned as they are.
func withFlagNames(err error, names map[string]string) error {
	var ie *events.InvalidError
	if len(names) == 0 || !errors.As(err, &ie) {
		return err
	}
	fields := ie.Fields()
	if len(fields) == 0 {
		return err
	}
	renamed := make([]error, len(fields))
	for i, f := range fields {
		name := f.Field
		if flag, ok := names[name]; ok {
			name += " (" + flag + ")"
		}
		renamed[i] = &hr.FieldError{Field: name, Reason: f.Reason}
	}
	return &events.InvalidError{Err: errors.Join(renamed...)}
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

func statusName(s enumspb.WorkflowExecutionStatus) string { return events.StatusName(s) }
