package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/policy"
)

// ledgerReader is the part of the access ledger the read commands use;
// *ledger.Store implements it, tests give fixed data.
type ledgerReader interface {
	Holdings(ctx context.Context, employeeID string) ([]ledger.Holding, error)
	Holders(ctx context.Context, application, entitlement string) ([]ledger.Holding, error)
	Trail(ctx context.Context, employeeID string, since time.Time) ([]ledger.Entry, error)
}

// openLedgerFunc opens the ledger; the returned func releases it.
type openLedgerFunc func(ctx context.Context, cfg config.Config) (ledgerReader, func(), error)

var _ ledgerReader = (*ledger.Store)(nil)

// storeConnectTimeout bounds how long a command waits for the store.
const storeConnectTimeout = 10 * time.Second

// openStore connects a small pool to the project's store (cfg.StoreURL),
// the database that holds the access ledger and the username reservations.
// It does not apply migrations: that is the worker's job at start.
func openStore(ctx context.Context, cfg config.Config) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.StoreURL)
	if err != nil {
		return nil, fmt.Errorf("store URL %s: cannot parse it (check PROVISIO_DB_URL)", config.Redact(cfg.StoreURL))
	}
	pcfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("store at %s: %w", config.Redact(cfg.StoreURL), err)
	}
	pctx, cancel := context.WithTimeout(ctx, storeConnectTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to the store at %s: %w", config.Redact(cfg.StoreURL), err)
	}
	return pool, nil
}

// openLedger is the production openLedgerFunc: the ledger in the store.
func openLedger(ctx context.Context, cfg config.Config) (ledgerReader, func(), error) {
	pool, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return ledger.New(pool), pool.Close, nil
}

// ledgerErr explains a failed ledger read; a missing table means no worker
// ever started against this store (the worker applies the migrations).
func ledgerErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return fmt.Errorf("the access ledger does not exist in this store yet: start the worker once, it creates it (%w)", err)
	}
	return fmt.Errorf("read the access ledger: %w", err)
}

// Name rules of the policy (policy/load.go): application and entitlement
// names are checked against them before the ledger is asked.
var (
	appNameRe         = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	entitlementNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
)

// holdingView is one thing a person holds, in `access` and `status`
// output: the ledger's holding and the UI link of the run that gave it.
type holdingView struct {
	ledger.Holding
	URL string `json:"url,omitempty"`
}

// entryView is one ledger entry in `audit` output, with its run's UI link.
type entryView struct {
	ledger.Entry
	URL string `json:"url,omitempty"`
}

// accessReport is `access EMPLOYEE_ID --output json`.
type accessReport struct {
	EmployeeID string        `json:"employeeId"`
	Holdings   []holdingView `json:"holdings"`
}

// holdersReport is `access --app APP --entitlement E --output json`.
type holdersReport struct {
	Application string        `json:"application"`
	Entitlement string        `json:"entitlement"`
	Holders     []holdingView `json:"holders"`
}

// auditReport is `audit --output json`.
type auditReport struct {
	EmployeeID string `json:"employeeId"`
	// Since is absent for the whole trail.
	Since   time.Time   `json:"since,omitzero"`
	Entries []entryView `json:"entries"`
}

// accessQuery is what `access` was asked: one person, or the holders of
// one entitlement.
type accessQuery struct {
	employeeID, app, entitlement string
}

func parseAccessQuery(args []string, app, entitlement string) (accessQuery, error) {
	switch {
	case len(args) == 1 && (app != "" || entitlement != ""):
		return accessQuery{}, errors.New("give either EMPLOYEE_ID or --app with --entitlement, not both")
	case len(args) == 1:
		if !hr.ValidEmployeeID(args[0]) {
			return accessQuery{}, fmt.Errorf("employee ID must be E followed by 6 digits, got %q", clip(args[0]))
		}
		return accessQuery{employeeID: args[0]}, nil
	case app == "" && entitlement == "":
		return accessQuery{}, errors.New("give EMPLOYEE_ID (what a person holds) or --app and --entitlement (who holds it)")
	case entitlement == "":
		return accessQuery{}, errors.New("--entitlement is required with --app")
	case app == "":
		return accessQuery{}, errors.New("--app is required with --entitlement")
	case !appNameRe.MatchString(app):
		return accessQuery{}, fmt.Errorf("--app %q is not an application name (lower-case letters, digits, '-' and '_', starting with a letter)", clip(app))
	case !entitlementNameRe.MatchString(entitlement):
		return accessQuery{}, fmt.Errorf("--entitlement %q is not an entitlement name (letters, digits, '.', '-' and '_', starting with a letter or digit)", clip(entitlement))
	}
	return accessQuery{app: app, entitlement: entitlement}, nil
}

func newAccessCmd(opts *rootOptions) *cobra.Command { return newAccessCmdWith(opts, openLedger) }

func newAccessCmdWith(opts *rootOptions, open openLedgerFunc) *cobra.Command {
	var app, entitlement, output string
	cmd := &cobra.Command{
		Use:   "access (EMPLOYEE_ID | --app APP --entitlement ENTITLEMENT)",
		Short: "Show what a person holds now and why, or who holds an entitlement",
		Long: `Answer from the access ledger, the append-only record of every change the
system made in an application (it outlives the Temporal history).

With EMPLOYEE_ID: every account and entitlement the person holds now, in
each application, and why: the event and policy rules that granted it, or
the approval with its approver and time; the policy version, since when,
and the run that made the change with its Temporal UI link.

With --app and --entitlement: everyone who holds that entitlement now.`,
		Example: `  starter access E100001
  starter access --app scim --entitlement finance-admins
  starter access E100001 -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			q, err := parseAccessQuery(args, app, entitlement)
			if err != nil {
				return err
			}
			cfg, err := opts.config()
			if err != nil {
				return err
			}
			l, release, err := open(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer release()
			if q.employeeID != "" {
				return runAccessOf(cmd.Context(), opts, cfg, l, q.employeeID, output)
			}
			return runHolders(cmd.Context(), opts, cfg, l, q, output)
		},
	}
	cmd.Flags().StringVar(&app, "app", "", "application, with --entitlement: who holds it")
	cmd.Flags().StringVar(&entitlement, "entitlement", "", "entitlement of --app")
	outputFlag(cmd, &output)
	return cmd
}

func runAccessOf(ctx context.Context, opts *rootOptions, cfg config.Config, l ledgerReader, employeeID, output string) error {
	hs, err := l.Holdings(ctx, employeeID)
	if err != nil {
		return ledgerErr(err)
	}
	rep := accessReport{EmployeeID: employeeID, Holdings: holdingViews(cfg, hs)}
	if output == "json" {
		return opts.printJSON(rep)
	}
	printAccess(opts.out, rep)
	return nil
}

func runHolders(ctx context.Context, opts *rootOptions, cfg config.Config, l ledgerReader, q accessQuery, output string) error {
	hs, err := l.Holders(ctx, q.app, q.entitlement)
	if err != nil {
		return ledgerErr(err)
	}
	rep := holdersReport{Application: q.app, Entitlement: q.entitlement, Holders: holdingViews(cfg, hs)}
	if output == "json" {
		return opts.printJSON(rep)
	}
	printHolders(opts.out, rep, policyHint(opts, q))
	return nil
}

// policyHint says, for an entitlement nobody holds, whether the policy
// knows it at all: a typo then stands out. It is only a hint: the ledger
// also answers for entitlements the policy no longer has.
func policyHint(opts *rootOptions, q accessQuery) string {
	p, err := policy.Load(opts.policyFile())
	if err != nil {
		return ""
	}
	if p.Application(q.app) == nil {
		return fmt.Sprintf("the policy %s has no application %q", opts.policyFile(), q.app)
	}
	if p.Entitlement(policy.Ref{Application: q.app, Entitlement: q.entitlement}) == nil {
		return fmt.Sprintf("the policy %s has no entitlement %q in %s", opts.policyFile(), q.entitlement, q.app)
	}
	return ""
}

func holdingViews(cfg config.Config, hs []ledger.Holding) []holdingView {
	out := make([]holdingView, 0, len(hs))
	for _, h := range hs {
		out = append(out, holdingView{Holding: h, URL: runURL(cfg, h.WorkflowID, h.RunID)})
	}
	return out
}

func runURL(cfg config.Config, workflowID, runID string) string {
	if workflowID == "" {
		return ""
	}
	return cfg.RunURL(workflowID, runID)
}

// countHoldings counts accounts (enabled and disabled) and entitlements.
func countHoldings(hs []holdingView) (enabled, disabled, entitlements int) {
	for _, h := range hs {
		switch {
		case h.Entitlement != "":
			entitlements++
		case h.State == ledger.StateDisabled:
			disabled++
		default:
			enabled++
		}
	}
	return enabled, disabled, entitlements
}

func printAccess(w io.Writer, rep accessReport) {
	if len(rep.Holdings) == 0 {
		fmt.Fprintf(w, "%s holds nothing in any application, according to the access ledger (history: starter audit %s).\n",
			rep.EmployeeID, rep.EmployeeID)
		return
	}
	enabled, disabled, ents := countHoldings(rep.Holdings)
	fmt.Fprintf(w, "Access of %s now: %s (from the access ledger)\n\n", rep.EmployeeID, countText(enabled, disabled, ents))
	printHoldingTable(w, rep.Holdings)
	printRunLinks(w, holdingLinks(rep.Holdings))
}

func printHolders(w io.Writer, rep holdersReport, hint string) {
	if len(rep.Holders) == 0 {
		fmt.Fprintf(w, "Nobody holds %s/%s now, according to the access ledger.\n", rep.Application, rep.Entitlement)
		if hint != "" {
			fmt.Fprintf(w, "Note: %s.\n", hint)
		}
		return
	}
	fmt.Fprintf(w, "Holders of %s/%s now: %d (from the access ledger)\n\n", rep.Application, rep.Entitlement, len(rep.Holders))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EMPLOYEE\tACCOUNT\tSINCE\tWHY\tPOLICY\tWORKFLOW")
	for _, h := range rep.Holders {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.EmployeeID, h.Account, localTime(h.Since), why(h.Justification),
			orDash(shortVersion(h.PolicyVersion)), orDash(h.WorkflowID))
	}
	_ = tw.Flush()
	printRunLinks(w, holdingLinks(rep.Holders))
}

// printHoldingTable is the table of what one person holds, shared with
// `status`.
func printHoldingTable(w io.Writer, hs []holdingView) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APPLICATION\tACCOUNT\tENTITLEMENT\tSTATE\tSINCE\tWHY\tPOLICY\tWORKFLOW")
	for _, h := range hs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Application, h.Account, orDash(h.Entitlement), h.State,
			localTime(h.Since), why(h.Justification), orDash(shortVersion(h.PolicyVersion)), orDash(h.WorkflowID))
	}
	_ = tw.Flush()
}

func countText(enabled, disabled, entitlements int) string {
	s := fmt.Sprintf("%d account(s)", enabled+disabled)
	if disabled > 0 {
		s += fmt.Sprintf(" (%d disabled)", disabled)
	}
	return s + fmt.Sprintf(", %d entitlement(s)", entitlements)
}

// why says in one line why a change was made: the process, then the
// approval or the rules, then the note.
func why(j ledger.Justification) string {
	var parts []string
	if j.ApprovalID != "" {
		a := "approval " + j.ApprovalID
		if j.Approver != "" {
			a = fmt.Sprintf("approved by %s at %s (%s)", j.Approver, localTime(j.ApprovedAt), j.ApprovalID)
		}
		parts = append(parts, a)
	}
	if len(j.Rules) > 0 {
		parts = append(parts, "rules "+strings.Join(j.Rules, ", "))
	}
	if j.Note != "" {
		parts = append(parts, j.Note)
	}
	s := orDash(j.Event)
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, "; ")
	}
	return s
}

// runLink is one run named in a report, with its UI link.
type runLink struct{ workflowID, runID, url string }

func holdingLinks(hs []holdingView) []runLink {
	links := make([]runLink, 0, len(hs))
	for _, h := range hs {
		links = append(links, runLink{h.WorkflowID, h.RunID, h.URL})
	}
	return links
}

// printRunLinks lists each run once, in first-seen order.
func printRunLinks(w io.Writer, links []runLink) {
	seen := map[runLink]bool{}
	first := true
	for _, l := range links {
		if l.url == "" || seen[l] {
			continue
		}
		seen[l] = true
		if first {
			fmt.Fprintln(w, "\nRuns:")
			first = false
		}
		fmt.Fprintf(w, "  %s  %s\n", l.workflowID, l.url)
	}
}

func newAuditCmd(opts *rootOptions) *cobra.Command {
	return newAuditCmdWith(opts, openLedger, time.Now)
}

func newAuditCmdWith(opts *rootOptions, open openLedgerFunc, now func() time.Time) *cobra.Command {
	var since, output string
	cmd := &cobra.Command{
		Use:   "audit EMPLOYEE_ID [--since DATE|DURATION]",
		Short: "Show every access change made for a person, oldest first",
		Long: `Print the person's full trail from the access ledger: every account
created, enabled, disabled or deleted and every entitlement granted or
revoked, oldest first, with the time, the reason (event, policy rules or
approval with approver), the policy version and the run that made it. A
disable, revoke or delete also shows its verification: when a read-back of
the application confirmed it (read-back, or fallback-delete when an ignored
disable was replaced by a delete) and when it was requested, or "not
verified" for one recorded before verification existed.

--since limits the trail to changes at or after a date (2026-01-31, UTC
midnight), a time (2026-01-31T09:00:00Z) or a duration back from now
(30d, 12h, 1d12h).`,
		Example: `  starter audit E100001
  starter audit E100001 --since 2026-01-01
  starter audit E100001 --since 30d -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			id := args[0]
			if !hr.ValidEmployeeID(id) {
				return fmt.Errorf("employee ID must be E followed by 6 digits, got %q", clip(id))
			}
			from, err := parseSince(since, now())
			if err != nil {
				return err
			}
			cfg, err := opts.config()
			if err != nil {
				return err
			}
			l, release, err := open(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer release()
			entries, err := l.Trail(cmd.Context(), id, from)
			if err != nil {
				return ledgerErr(err)
			}
			rep := auditReport{EmployeeID: id, Since: from, Entries: make([]entryView, 0, len(entries))}
			for _, e := range entries {
				rep.Entries = append(rep.Entries, entryView{Entry: e, URL: runURL(cfg, e.WorkflowID, e.RunID)})
			}
			if output == "json" {
				return opts.printJSON(rep)
			}
			printAudit(opts.out, rep)
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only changes at or after a date, time or duration ago (2026-01-31, 30d)")
	outputFlag(cmd, &output)
	return cmd
}

// parseSince reads --since: empty (the whole trail), a date (UTC
// midnight), an RFC 3339 time, or a duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	var t time.Time
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		t = d
	} else if ts, err := time.Parse(time.RFC3339, s); err == nil {
		t = ts
	} else if dur, err := policy.ParseDuration(s); err == nil {
		if dur <= 0 {
			return time.Time{}, fmt.Errorf("--since %q: the duration must be positive", clip(s))
		}
		t = now.Add(-dur)
	} else {
		return time.Time{}, fmt.Errorf("--since %q: want a date (2026-01-31), a time (2026-01-31T09:00:00Z) or a duration (30d, 12h)", clip(s))
	}
	if t.After(now) {
		return time.Time{}, fmt.Errorf("--since %q is in the future", clip(s))
	}
	return t, nil
}

func printAudit(w io.Writer, rep auditReport) {
	from := ""
	if !rep.Since.IsZero() {
		from = " since " + localTime(rep.Since)
	}
	if len(rep.Entries) == 0 {
		fmt.Fprintf(w, "No access changes for %s%s in the access ledger.\n", rep.EmployeeID, from)
		return
	}
	fmt.Fprintf(w, "Access changes for %s%s: %d, oldest first\n\n", rep.EmployeeID, from, len(rep.Entries))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTION\tAPPLICATION\tACCOUNT\tENTITLEMENT\tWHY\tPOLICY\tWORKFLOW\tVERIFIED")
	links := make([]runLink, 0, len(rep.Entries))
	for _, e := range rep.Entries {
		action := string(e.Action)
		if e.Disabled {
			action += " (disabled)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", localTime(e.At), action, e.Application, e.Account,
			orDash(e.Entitlement), why(e.Justification), orDash(shortVersion(e.PolicyVersion)), orDash(e.WorkflowID),
			verification(e.Entry))
		links = append(links, runLink{e.WorkflowID, e.RunID, e.URL})
	}
	_ = tw.Flush()
	printRunLinks(w, links)
}

// verification says how a revocation was verified, for `audit`: "read-back
// at T (requested R)", "fallback-delete at T", "not verified" for one
// recorded without (before verification existed); "-" for the actions that
// grant, which are not verified.
func verification(e ledger.Entry) string {
	switch {
	case !e.Action.IsRevocation():
		return "-"
	case e.VerifiedBy == "":
		return "not verified"
	}
	s := e.VerifiedBy + " at " + localTime(e.VerifiedAt)
	if !e.RequestedAt.IsZero() {
		s += " (requested " + localTime(e.RequestedAt) + ")"
	}
	return s
}
