package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/internal/roster"
	"github.com/provisio-dev/provisio/internal/store"
)

// defaultMaxLeavers is the leaver cap of one sync. A truncated or
// half-written export (a failed HR job, a filter left on) looks exactly like
// a mass departure; 25 is more than a normal day's leavers in a company of a
// few thousand, and far fewer than a broken file implies.
const defaultMaxLeavers = 25

// saveTimeout bounds storing one person's state after their events were
// accepted. The save runs even after Ctrl-C: the events already started, so
// recording them spares the next sync a round of "already exists".
const saveTimeout = 10 * time.Second

// syncState is what the sync needs of the stored roster (roster.Store).
type syncState interface {
	Lock(ctx context.Context, source string) (release func(), err error)
	Load(ctx context.Context, source string) (map[string]roster.State, error)
	Save(ctx context.Context, source string, st roster.State) error
	KnownAmong(ctx context.Context, ids []string) (map[string]bool, error)
	Known(ctx context.Context, employeeID string) (bool, error)
}

// eventStarter starts one HR event (events.Starter).
type eventStarter interface {
	Start(ctx context.Context, e events.Event) (events.Receipt, error)
}

type syncOptions struct {
	csv        string
	source     string
	dryRun     bool
	maxLeavers int
	output     string
	// connect opens the roster state; close releases it. Replaceable so
	// tests need no database.
	connect func(ctx context.Context, cfg config.Config) (st syncState, close func(), err error)
	// starter builds the event starter on first use; people answers its
	// questions about managers and employees. Replaceable so tests need no
	// Temporal server.
	starter func(ctx context.Context, opts *rootOptions, people events.People) (s eventStarter, close func(), err error)
	// terminal reports whether the progress bar may draw on w.
	terminal func(w io.Writer) bool
}

func newSyncCmd(opts *rootOptions) *cobra.Command {
	return newSyncCmdWith(opts, &syncOptions{connect: connectRosterStore, starter: dialStarter, terminal: isTerminal})
}

func newSyncCmdWith(opts *rootOptions, s *syncOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sync --csv FILE",
		Short: "Start the joiner, mover and leaver events an HR roster export implies",
		Long: `Compare an HR roster export (CSV, header as in deployments/demo/roster.csv)
with the state of the last sync of the same feed, kept in PostgreSQL, and
start exactly the events that follow:

  joiner        a new active row (a new terminated row is only recorded)
  mover         a changed department, title, manager_id, location or
                employment_type
  leaver        a row now terminated (access ends when its end_date ends,
                or now) or a row gone from the export (access ends now)
  contract-end  an active contractor's new end_date (reschedules the
                offboarding their onboarding scheduled)

Names, e-mail and start_date changes are recorded without an event. Each
person's new state is stored once their events were accepted, so syncing the
same file twice starts nothing the second time, and a sync that failed half
way starts only the rest when run again.

One bad row never stops the others: it is listed with its line and reason
(including an unknown manager or a loop of managers) and its person is left
as they were, never treated as gone. A file that is not a roster at all
(wrong header, not UTF-8, over 64 MiB) is rejected whole.

More leavers than --max-leavers refuse the whole sync before anything starts:
a truncated export must not offboard the company.

Exit status: 0 when every event started and every row was read; 1 when the
file or the sync was refused, an event failed to start, or any row was
rejected (the other rows are synced even then).`,
		Example: `  starter sync --csv export.csv --dry-run
  starter sync --csv export.csv
  starter sync --csv contractors.csv --source contractors --output json
  starter sync --csv export.csv --max-leavers 60   # a known large layoff`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return s.run(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&s.csv, "csv", "", "HR roster export to sync (required)")
	f.StringVar(&s.source, "source", roster.DefaultSource, "name of the HR feed; each feed keeps its own state")
	f.BoolVar(&s.dryRun, "dry-run", false, "print the events without starting anything or writing state")
	f.IntVar(&s.maxLeavers, "max-leavers", defaultMaxLeavers, "refuse the sync when it implies more leavers than this")
	outputFlag(cmd, &s.output)
	_ = cmd.MarkFlagRequired("csv")
	return cmd
}

// check validates the flags before anything is read or started.
func (s *syncOptions) check() error {
	if err := checkOutput(s.output); err != nil {
		return err
	}
	if s.maxLeavers < 0 {
		return fmt.Errorf("--max-leavers: must be 0 or more, got %d", s.maxLeavers)
	}
	if err := roster.ValidateSource(s.source); err != nil {
		return fmt.Errorf("--%w", err)
	}
	if s.csv == "" {
		return errors.New("--csv: the HR export to sync is required")
	}
	return nil
}

func (s *syncOptions) run(ctx context.Context, opts *rootOptions) error {
	if err := s.check(); err != nil {
		return err
	}
	ex, err := readExport(s.csv)
	if err != nil {
		return err
	}
	cfg, err := opts.config()
	if err != nil {
		return err
	}
	st, closeStore, err := s.connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStore()
	if !s.dryRun {
		release, err := st.Lock(ctx, s.source)
		if err != nil {
			return fmt.Errorf("sync of feed %q: %w", s.source, err)
		}
		defer release()
	}
	stored, err := st.Load(ctx, s.source)
	if err != nil {
		return err
	}
	known, err := st.KnownAmong(ctx, outsideManagers(ex, stored))
	if err != nil {
		return err
	}
	plan := roster.Diff(ex, stored, roster.Options{KnownElsewhere: known})
	sum := newSyncSummary(s, ex, plan)

	if n := plan.Leavers(); n > s.maxLeavers {
		capErr := fmt.Errorf("refused: the export implies %d leavers, more than --max-leavers %d; nothing started, no state written. "+
			"A truncated export must not offboard the company: check the file (--dry-run lists them), then run again with --max-leavers %d if they are real",
			n, s.maxLeavers, n)
		if s.dryRun {
			if err := s.print(opts, sum); err != nil {
				return err
			}
		}
		return capErr
	}
	if s.dryRun {
		if err := s.print(opts, sum); err != nil {
			return err
		}
		return sum.err()
	}

	s.apply(ctx, opts, st, plan, fileKnows(ex, st), &sum)
	if err := s.print(opts, sum); err != nil {
		return err
	}
	return sum.err()
}

// apply starts each step's events in order and stores the person's new
// state once all of them were accepted (any outcome: started, queued,
// existing, rescheduled). A failed event leaves the person's state as it
// was, so the next sync emits it again; the person's later events wait
// for it.
func (s *syncOptions) apply(ctx context.Context, opts *rootOptions, st syncState, plan roster.Plan, people events.People, sum *syncSummary) {
	bar := s.progress(opts.errOut, len(plan.Steps))
	defer func() {
		if bar != nil {
			_ = bar.Finish()
			_ = bar.Clear()
		}
	}()
	var starter eventStarter
	var dialErr error
	closeStarter := func() {}
	defer func() { closeStarter() }()
	for _, step := range plan.Steps {
		if bar != nil {
			_ = bar.Add(1)
		}
		if err := ctx.Err(); err != nil {
			sum.fail(step, step.Changes, "interrupted: not started")
			continue
		}
		if len(step.Changes) > 0 && starter == nil && dialErr == nil {
			var closeFn func()
			if starter, closeFn, dialErr = s.starter(ctx, opts, people); dialErr == nil {
				closeStarter = closeFn
			}
		}
		if len(step.Changes) > 0 && dialErr != nil {
			sum.fail(step, step.Changes, dialErr.Error())
			continue
		}
		ok := true
		for i, c := range step.Changes {
			rec, err := starter.Start(ctx, c.Event)
			if err != nil {
				sum.fail(step, step.Changes[i:i+1], err.Error())
				if rest := step.Changes[i+1:]; len(rest) > 0 {
					sum.fail(step, rest, "not started: an earlier event of this person failed")
				}
				ok = false
				break
			}
			sum.started(step, c, rec)
		}
		if !ok {
			continue
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
		err := st.Save(sctx, s.source, step.Next)
		cancel()
		if err != nil {
			sum.fail(step, nil, "events accepted but state not saved (the next sync finds them existing): "+err.Error())
			continue
		}
		if len(step.Changes) == 0 {
			sum.Recorded++
		}
	}
}

// progress returns a progress bar on w when w is a terminal and the sync
// has enough to do to be worth one; nil otherwise (pipes, files, tests).
func (s *syncOptions) progress(w io.Writer, n int) *progressbar.ProgressBar {
	if n == 0 || s.output != "table" || s.terminal == nil || !s.terminal(w) {
		return nil
	}
	return progressbar.NewOptions(n,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("syncing "+s.source),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// readExport reads and parses the export at path (bounded in roster.Read).
func readExport(path string) (roster.Export, error) {
	f, err := os.Open(path)
	if err != nil {
		return roster.Export{}, fmt.Errorf("--csv: %w", err)
	}
	defer f.Close()
	ex, err := roster.Read(f)
	if err != nil {
		return roster.Export{}, fmt.Errorf("%s rejected whole, nothing started: %w", path, err)
	}
	return ex, nil
}

// outsideManagers lists the managers of active rows that are neither in
// the export nor in the feed's state: only other feeds can know them.
func outsideManagers(ex roster.Export, stored map[string]roster.State) []string {
	in := map[string]bool{}
	for _, r := range ex.Rows {
		in[r.Person.EmployeeID] = true
	}
	for _, r := range ex.Rejected {
		in[r.EmployeeID] = true
	}
	var out []string
	for _, r := range ex.Rows {
		m := r.Person.ManagerID
		if _, ok := stored[m]; m == "" || in[m] || ok {
			continue
		}
		in[m] = true
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// exportPeople answers events.People for the sync: everyone in the export
// is known (a joiner's manager may be a joiner of the same file, not yet
// stored), then anyone in a synced roster.
type exportPeople struct {
	ids   map[string]bool
	state syncState
}

func fileKnows(ex roster.Export, st syncState) exportPeople {
	ids := make(map[string]bool, len(ex.Rows))
	for _, r := range ex.Rows {
		ids[r.Person.EmployeeID] = true
	}
	return exportPeople{ids: ids, state: st}
}

// Known implements events.People.
func (p exportPeople) Known(ctx context.Context, employeeID string) (bool, error) {
	if p.ids[employeeID] {
		return true, nil
	}
	return p.state.Known(ctx, employeeID)
}

// connectRosterStore opens the project database (applying migrations, so a
// first sync on a fresh machine works) and returns its roster state.
func connectRosterStore(ctx context.Context, cfg config.Config) (syncState, func(), error) {
	pool, err := store.Open(ctx, cfg.StoreURL)
	if err != nil {
		return nil, nil, fmt.Errorf("roster state in %s: %w", config.Redact(cfg.StoreURL), err)
	}
	return roster.NewStore(pool), pool.Close, nil
}

// dialStarter connects to Temporal and returns the events starter.
func dialStarter(ctx context.Context, opts *rootOptions, people events.People) (eventStarter, func(), error) {
	c, cfg, err := opts.client(ctx)
	if err != nil {
		return nil, nil, err
	}
	return &events.Starter{Client: c, Config: cfg, People: people}, c.Close, nil
}

// syncSummary is what a sync did; its JSON fields are stable
// (`starter sync --output json`, documented in the README).
type syncSummary struct {
	Source string `json:"source"`
	File   string `json:"file"`
	DryRun bool   `json:"dryRun"`
	// Rows counts the export's data rows, good and rejected.
	Rows int `json:"rows"`
	// Started counts accepted events by kind (every kind present); in a
	// dry run, the events that would start.
	Started map[roster.Kind]int `json:"started"`
	// Unchanged counts rows equal to their stored state.
	Unchanged int `json:"unchanged"`
	// Recorded counts state updates without an event (see Notes).
	Recorded int         `json:"recorded"`
	Events   []syncEvent `json:"events"`
	Notes    []syncNote  `json:"notes"`
	// Rejected rows, by line.
	Rejected []roster.Rejection `json:"rejected"`
	// Held are people whose row is gone but who were not offboarded,
	// because a rejected row's employee ID could not be read.
	Held   []string    `json:"held"`
	Failed []syncEvent `json:"failed"`
}

// syncEvent is one event of the sync: accepted (Outcome set), planned (dry
// run), or failed (Error set).
type syncEvent struct {
	Kind       roster.Kind `json:"kind,omitempty"`
	Type       events.Type `json:"type,omitempty"`
	EmployeeID string      `json:"employeeId"`
	// Line is the row's line; 0 for a row gone from the export.
	Line int `json:"line"`
	// Why says what changed.
	Why string `json:"why,omitempty"`
	// Effective is a leaver's or contract end's last day (empty: now).
	Effective string         `json:"effective,omitempty"`
	Outcome   events.Outcome `json:"outcome,omitempty"`
	// Detail is the events layer's sentence ("already in progress", ...).
	Detail     string `json:"detail,omitempty"`
	WorkflowID string `json:"workflowId,omitempty"`
	RunID      string `json:"runId,omitempty"`
	URL        string `json:"url,omitempty"`
	// AccessEnds is when a leaver's access ends, as the run was told.
	AccessEnds time.Time `json:"accessEnds,omitzero"`
	Error      string    `json:"error,omitempty"`
}

// syncNote is something the sync recorded without an event.
type syncNote struct {
	EmployeeID string `json:"employeeId"`
	Line       int    `json:"line"`
	Note       string `json:"note"`
}

func newSyncSummary(s *syncOptions, ex roster.Export, plan roster.Plan) syncSummary {
	sum := syncSummary{
		Source: s.source, File: s.csv, DryRun: s.dryRun, Rows: len(ex.Rows) + len(ex.Rejected),
		Started: map[roster.Kind]int{}, Unchanged: plan.Unchanged,
		Events: []syncEvent{}, Notes: []syncNote{}, Rejected: plan.Rejected, Held: plan.Held, Failed: []syncEvent{},
	}
	if sum.Rejected == nil {
		sum.Rejected = []roster.Rejection{}
	}
	if sum.Held == nil {
		sum.Held = []string{}
	}
	for _, k := range roster.Kinds {
		sum.Started[k] = 0
	}
	for _, st := range plan.Steps {
		if st.Note != "" {
			sum.Notes = append(sum.Notes, syncNote{EmployeeID: st.EmployeeID, Line: st.Line, Note: st.Note})
		}
		if !s.dryRun {
			continue
		}
		if len(st.Changes) == 0 {
			sum.Recorded++
		}
		for _, c := range st.Changes {
			sum.Events = append(sum.Events, eventOf(st, c))
			sum.Started[c.Kind]++
		}
	}
	return sum
}

func eventOf(st roster.Step, c roster.Change) syncEvent {
	return syncEvent{
		Kind: c.Kind, Type: c.Event.Type, EmployeeID: st.EmployeeID, Line: st.Line,
		Why: c.Why, Effective: c.Event.Effective.String(),
	}
}

func (sum *syncSummary) started(st roster.Step, c roster.Change, r events.Receipt) {
	e := eventOf(st, c)
	e.Outcome, e.Detail, e.WorkflowID, e.RunID, e.URL, e.AccessEnds = r.Outcome, r.Detail, r.WorkflowID, r.RunID, r.URL, r.AccessEnds
	sum.Events = append(sum.Events, e)
	sum.Started[c.Kind]++
}

// fail records changes that did not start; with no changes, a step whose
// state could not be saved.
func (sum *syncSummary) fail(st roster.Step, changes []roster.Change, msg string) {
	if len(changes) == 0 {
		sum.Failed = append(sum.Failed, syncEvent{EmployeeID: st.EmployeeID, Line: st.Line, Error: msg})
		return
	}
	for _, c := range changes {
		e := eventOf(st, c)
		e.Error = msg
		sum.Failed = append(sum.Failed, e)
	}
}

// err is the command's verdict: failed events and rejected rows make the
// exit status non-zero, after everything else was synced. An HR
// integration runs unattended, and a rejected row is a person whose change
// did not happen: its job must go red until HR fixes the row.
func (sum syncSummary) err() error {
	var parts []string
	if n := len(sum.Failed); n > 0 {
		parts = append(parts, plural(n, "event")+" failed to start (the next sync tries them again)")
	}
	if n := len(sum.Rejected); n > 0 {
		parts = append(parts, plural(n, "row")+" rejected (fix them in HR; the other rows were synced)")
	}
	if len(parts) == 0 {
		return nil
	}
	return errors.New("sync incomplete: " + strings.Join(parts, "; "))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func (s *syncOptions) print(opts *rootOptions, sum syncSummary) error {
	if s.output == "json" {
		return opts.printJSON(sum)
	}
	w := opts.out
	verb := "started"
	if sum.DryRun {
		fmt.Fprintf(w, "Dry run of %s (feed %s): nothing started, no state written.\n", filepath.Base(sum.File), sum.Source)
		verb = "would start"
	} else {
		fmt.Fprintf(w, "Synced %s (feed %s).\n", filepath.Base(sum.File), sum.Source)
	}
	var counts []string
	for _, k := range roster.Kinds {
		counts = append(counts, fmt.Sprintf("%d %s", sum.Started[k], k))
	}
	fmt.Fprintf(w, "  rows: %d   %s: %s\n", sum.Rows, verb, strings.Join(counts, ", "))
	fmt.Fprintf(w, "  unchanged: %d   recorded without an event: %d   rejected: %d   failed: %d\n",
		sum.Unchanged, sum.Recorded, len(sum.Rejected), len(sum.Failed))

	if len(sum.Events) > 0 {
		fmt.Fprintf(w, "\nEvents:\n")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		if sum.DryRun {
			fmt.Fprintln(tw, "  KIND\tEMPLOYEE\tLINE\tWHAT")
		} else {
			fmt.Fprintln(tw, "  KIND\tEMPLOYEE\tLINE\tOUTCOME\tWHAT\tWORKFLOW")
		}
		for _, e := range sum.Events {
			line := "gone"
			if e.Line > 0 {
				line = fmt.Sprint(e.Line)
			}
			if sum.DryRun {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Kind, e.EmployeeID, line, e.Why)
				continue
			}
			outcome := string(e.Outcome)
			if e.Detail != "" && e.Outcome != events.OutcomeStarted {
				outcome += " (" + e.Detail + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", e.Kind, e.EmployeeID, line, outcome, e.Why, e.WorkflowID)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(sum.Rejected) > 0 {
		fmt.Fprintf(w, "\nRejected rows (nothing changed for them):\n")
		for _, r := range sum.Rejected {
			fmt.Fprintf(w, "  line %d %s: %s\n", r.Line, orUnknown(r.EmployeeID), r.Reason)
		}
	}
	if len(sum.Held) > 0 {
		fmt.Fprintf(w, "\nNot offboarded although their rows are gone (a rejected row without a readable employee_id may be theirs):\n  %s\n",
			strings.Join(sum.Held, ", "))
	}
	if len(sum.Failed) > 0 {
		fmt.Fprintf(w, "\nFailed (state kept; the next sync tries again):\n")
		for _, e := range sum.Failed {
			what := "state"
			if e.Kind != "" {
				what = string(e.Kind)
			}
			fmt.Fprintf(w, "  %s %s %s: %s\n", what, e.EmployeeID, lineText(e.Line), e.Error)
		}
	}
	if len(sum.Notes) > 0 {
		fmt.Fprintf(w, "\nNotes:\n")
		for _, n := range sum.Notes {
			fmt.Fprintf(w, "  %s %s: %s\n", n.EmployeeID, lineText(n.Line), n.Note)
		}
	}
	return nil
}

func lineText(line int) string {
	if line == 0 {
		return "(gone)"
	}
	return fmt.Sprintf("line %d", line)
}

func orUnknown(id string) string {
	if id == "" {
		return "(unreadable employee_id)"
	}
	return id
}
