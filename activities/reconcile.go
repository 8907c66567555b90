package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/reconcile"
	"github.com/provisio-dev/provisio/policy"
)

// ReconcileStore is what a reconciliation scan reads besides the
// applications (the synced roster, reserved usernames, the access ledger)
// and where it keeps its findings; reconcile.Store implements it.
type ReconcileStore interface {
	ActivePeople(ctx context.Context, source string, ids []string) (map[string]hr.Person, error)
	Owners(ctx context.Context, usernames []string) (map[string]string, error)
	Usernames(ctx context.Context, ids []string) (map[string]string, error)
	Holdings(ctx context.Context, app string, ids []string) (map[string][]ledger.Holding, error)
	MarkSeen(ctx context.Context, runID, app string, ids []string) error
	Unseen(ctx context.Context, q reconcile.UnseenQuery) ([]hr.Person, error)
	ForgetSeen(ctx context.Context, runID, app string) error
	SaveItems(ctx context.Context, runID string, items []reconcile.Item) error
	Summarize(ctx context.Context, runID, app string, perClass int) (reconcile.Summary, error)
	Items(ctx context.Context, runID string, q reconcile.ItemQuery) ([]reconcile.Item, error)
	SetOutcomes(ctx context.Context, runID string, outs []reconcile.Outcome) error
}

var _ ReconcileStore = (*reconcile.Store)(nil)

// LifecycleRuns tells which people have a joiner, mover or leaver run in
// flight: reconciliation leaves them alone rather than fight it.
type LifecycleRuns interface {
	InFlight(ctx context.Context, ids []string) (map[string]bool, error)
}

// Reconciliation are the dependencies only reconciliation needs.
type Reconciliation struct {
	Store ReconcileStore
	// Runs answers which people have a lifecycle run in flight; nil asks
	// Temporal's visibility through the worker's own client.
	Runs LifecycleRuns
}

// Defaults of a scan.
const (
	// DefaultReconcilePageSize is the accounts read per page.
	DefaultReconcilePageSize = 1000
	// DefaultReconcileSamples is how many items of each class a scan
	// returns to the workflow; the rest stay in the store.
	DefaultReconcileSamples = 20
	// MaxReconcileSamples bounds the samples, which travel into the
	// workflow history.
	MaxReconcileSamples = 100
)

// Scan phases, in order (ScanProgress.Phase).
const (
	PhaseAccounts = "accounts"
	PhasePeople   = "people"
	PhaseDone     = "done"
)

// ReconcileScope restricts a run to some people and accounts. Empty means
// everything. Meant for reconciling one person, and for tests that share an
// application with others.
type ReconcileScope struct {
	// EmployeeIDs are people whose accounts (and missing accounts) count.
	EmployeeIDs []string `json:"employeeIds,omitempty"`
	// Accounts are usernames that count, whoever owns them (e.g. an
	// account no person owns).
	Accounts []string `json:"accounts,omitempty"`
}

// Empty reports whether the scope restricts nothing.
func (s ReconcileScope) Empty() bool { return len(s.EmployeeIDs) == 0 && len(s.Accounts) == 0 }

// ReconcileApplications lists the applications a reconciliation covers by
// default: every application of the policy in force this worker has a
// connector for, sorted.
func (a *Activities) ReconcileApplications(_ context.Context) ([]string, error) {
	if a.Policy == nil {
		return nil, invalid("ReconcileApplications", "this worker has no policy")
	}
	var out []string
	for _, app := range a.Policy.Current().Applications {
		if _, ok := a.Connectors[app.Name]; ok {
			out = append(out, app.Name)
		}
	}
	return out, nil
}

// ScanInput asks for the reconciliation of one application.
type ScanInput struct {
	// RunID keys the findings in the store: the reconciliation's workflow
	// ID.
	RunID string `json:"runId"`
	App   string `json:"app"`
	// Source is the roster feed that says who is active; empty means
	// active in any feed.
	Source   string         `json:"source,omitempty"`
	Scope    ReconcileScope `json:"scope,omitzero"`
	PageSize int            `json:"pageSize,omitempty"`
	// Samples is how many items of each class to return.
	Samples int `json:"samples,omitempty"`
}

// ScanProgress is a scan's heartbeat: where it is, so a retry resumes
// there, and what it has seen, for the progress bar.
type ScanProgress struct {
	App   string `json:"app"`
	Phase string `json:"phase"`
	// PageToken continues the account listing.
	PageToken string `json:"pageToken,omitempty"`
	// After continues the people listing after this employee ID.
	After string `json:"after,omitempty"`
	// Accounts counts accounts read, People active people without an
	// account checked.
	Accounts int `json:"accounts"`
	People   int `json:"people"`
	// Skipped counts accounts and people left alone because a lifecycle
	// run of theirs is in flight.
	Skipped int `json:"skipped"`
	// Unplanned counts people policy could not plan for (logged).
	Unplanned int `json:"unplanned,omitempty"`
}

// ScanResult is what a scan found: its counts and a few samples; the full
// list is in the store under the run ID.
type ScanResult struct {
	App       string `json:"app"`
	Accounts  int    `json:"accounts"`
	People    int    `json:"people"`
	Skipped   int    `json:"skipped"`
	Unplanned int    `json:"unplanned,omitempty"`
	reconcile.Summary
}

// ScanApplication compares one application with the synced roster, the
// policy and the ledger, and stores every difference under the run ID. It
// pages through the accounts, then through the active people no account was
// seen for, heartbeating its position after every page; a retry resumes
// from the last heartbeat, and saving a page twice stores nothing twice.
func (a *Activities) ScanApplication(ctx context.Context, in ScanInput) (ScanResult, error) {
	const op = "ScanApplication"
	s, err := a.newScanner(ctx, op, in)
	if err != nil {
		return ScanResult{}, err
	}
	pr := ScanProgress{App: in.App, Phase: PhaseAccounts}
	if activity.HasHeartbeatDetails(ctx) {
		var last ScanProgress
		if err := activity.GetHeartbeatDetails(ctx, &last); err == nil && last.App == in.App {
			pr = last
		}
	}
	for pr.Phase == PhaseAccounts {
		page, err := s.conn.ListAccounts(ctx, connectors.ListAccountsRequest{PageSize: s.pageSize, PageToken: pr.PageToken})
		if err != nil {
			return ScanResult{}, classify(in.App, op, err)
		}
		if err := s.accounts(ctx, page.Accounts, &pr); err != nil {
			return ScanResult{}, err
		}
		pr.Accounts += len(page.Accounts)
		pr.PageToken = page.NextPageToken
		if pr.PageToken == "" {
			pr.Phase = PhasePeople
		}
		activity.RecordHeartbeat(ctx, pr)
	}
	for pr.Phase == PhasePeople {
		people, err := s.rec.Store.Unseen(ctx, reconcile.UnseenQuery{
			RunID: in.RunID, App: in.App, Source: in.Source, EmployeeIDs: in.Scope.EmployeeIDs,
			After: pr.After, Limit: s.pageSize,
		})
		if err != nil {
			return ScanResult{}, unavailable(op, err)
		}
		if len(people) == 0 {
			pr.Phase = PhaseDone
			break
		}
		if err := s.people(ctx, people, &pr); err != nil {
			return ScanResult{}, err
		}
		pr.People += len(people)
		pr.After = people[len(people)-1].EmployeeID
		activity.RecordHeartbeat(ctx, pr)
	}
	if err := s.rec.Store.ForgetSeen(ctx, in.RunID, in.App); err != nil {
		return ScanResult{}, unavailable(op, err)
	}
	sum, err := s.rec.Store.Summarize(ctx, in.RunID, in.App, s.samples)
	if err != nil {
		return ScanResult{}, unavailable(op, err)
	}
	return ScanResult{App: in.App, Accounts: pr.Accounts, People: pr.People, Skipped: pr.Skipped, Unplanned: pr.Unplanned, Summary: sum}, nil
}

// scanner is one scan's settings and dependencies.
type scanner struct {
	a        *Activities
	in       ScanInput
	rec      *Reconciliation
	runs     LifecycleRuns
	conn     connectors.Connector
	app      *policy.Application
	pageSize int
	samples  int
	scopeIDs map[string]bool
	scopeAcc map[string]bool
}

func (a *Activities) newScanner(ctx context.Context, op string, in ScanInput) (*scanner, error) {
	switch {
	case strings.TrimSpace(in.RunID) == "":
		return nil, invalid(op, "run ID is empty")
	case a.Reconciliation == nil || a.Reconciliation.Store == nil:
		return nil, invalid(op, "this worker has no reconciliation store")
	case a.Planner == nil || a.Policy == nil:
		return nil, invalid(op, "this worker has no policy")
	case in.PageSize < 0 || in.Samples < 0:
		return nil, invalid(op, "page size and samples must not be negative")
	}
	conn, err := a.connector(in.App, op)
	if err != nil {
		return nil, err
	}
	app := a.Policy.Current().Application(in.App)
	if app == nil {
		return nil, invalid(op, "application %q is not in the policy in force", in.App)
	}
	s := &scanner{
		a: a, in: in, rec: a.Reconciliation, runs: a.Reconciliation.Runs, conn: conn, app: app,
		pageSize: connectors.ListAccountsRequest{PageSize: cmp.Or(in.PageSize, DefaultReconcilePageSize)}.PageSizeOrDefault(),
		samples:  min(cmp.Or(in.Samples, DefaultReconcileSamples), MaxReconcileSamples),
		scopeIDs: set(in.Scope.EmployeeIDs), scopeAcc: set(in.Scope.Accounts),
	}
	if s.runs == nil {
		s.runs = VisibilityRuns{Client: activity.GetClient(ctx)}
	}
	return s, nil
}

// inScope reports whether an account (owner may be empty) or a person
// counts in this run.
func (s *scanner) inScope(owner, username string) bool {
	if len(s.scopeIDs) == 0 && len(s.scopeAcc) == 0 {
		return true
	}
	return (owner != "" && s.scopeIDs[owner]) || (username != "" && s.scopeAcc[username])
}

// owned is a listed account with the person it belongs to.
type owned struct {
	acct  connectors.Account
	owner string
}

// accounts classifies one page of accounts and saves what it finds.
func (s *scanner) accounts(ctx context.Context, page []connectors.Account, pr *ScanProgress) error {
	const op = "ScanApplication"
	st := s.rec.Store
	var noID []string
	for _, ac := range page {
		if ac.EmployeeID == "" {
			noID = append(noID, ac.Username)
		}
	}
	owners, err := st.Owners(ctx, noID)
	if err != nil {
		return unavailable(op, err)
	}
	var items []reconcile.Item
	var seen, ids []string
	var cands []owned
	listed := map[string]bool{}
	for _, ac := range page {
		if pat, ok := s.app.Ignored(ac.Username); ok {
			if s.inScope(ac.EmployeeID, ac.Username) {
				items = append(items, s.item(reconcile.ClassUnmanaged, ac.Username, ac.EmployeeID, "", reconcile.ActionNone,
					"matches the policy's ignore pattern "+pat))
			}
			continue
		}
		owner := ac.EmployeeID
		if owner == "" {
			owner = owners[ac.Username]
		}
		if owner == "" {
			if s.inScope("", ac.Username) {
				items = append(items, s.item(reconcile.ClassUnmanaged, ac.Username, "", "", reconcile.ActionNone,
					"no employee ID, and no person has this username"))
			}
			continue
		}
		seen = append(seen, owner)
		if !s.inScope(owner, ac.Username) {
			continue
		}
		if !listed[owner] {
			listed[owner] = true
			ids = append(ids, owner)
		}
		cands = append(cands, owned{acct: ac, owner: owner})
	}
	if err := st.MarkSeen(ctx, s.in.RunID, s.in.App, seen); err != nil {
		return unavailable(op, err)
	}
	active, err := st.ActivePeople(ctx, s.in.Source, ids)
	if err != nil {
		return unavailable(op, err)
	}
	busy, err := s.runs.InFlight(ctx, ids)
	if err != nil {
		return unavailable(op, err)
	}
	var settled []string
	for _, id := range ids {
		if _, ok := active[id]; ok && !busy[id] {
			settled = append(settled, id)
		}
	}
	holdings, err := st.Holdings(ctx, s.in.App, settled)
	if err != nil {
		return unavailable(op, err)
	}
	plans := map[string]PlanAccessResult{}
	for _, c := range cands {
		if busy[c.owner] {
			pr.Skipped++
			continue
		}
		p, ok := active[c.owner]
		if !ok {
			if !c.acct.Disabled {
				items = append(items, s.item(reconcile.ClassOrphan, c.acct.Username, c.owner, "", reconcile.ActionDisable,
					"no active HR record for "+c.owner))
			}
			continue
		}
		plan, ok := plans[c.owner]
		if !ok {
			if plan, ok = s.plan(ctx, p, pr); !ok {
				continue
			}
			plans[c.owner] = plan
		}
		items = append(items, s.compare(c.acct, c.owner, plan, holdings[c.owner])...)
	}
	if err := st.SaveItems(ctx, s.in.RunID, items); err != nil {
		return unavailable(op, err)
	}
	return nil
}

// people checks one page of active people no account was seen for: each
// one policy grants access in the application is missing the account.
func (s *scanner) people(ctx context.Context, page []hr.Person, pr *ScanProgress) error {
	const op = "ScanApplication"
	st := s.rec.Store
	ids := make([]string, len(page))
	for i, p := range page {
		ids[i] = p.EmployeeID
	}
	busy, err := s.runs.InFlight(ctx, ids)
	if err != nil {
		return unavailable(op, err)
	}
	usernames, err := st.Usernames(ctx, ids)
	if err != nil {
		return unavailable(op, err)
	}
	var items []reconcile.Item
	for _, p := range page {
		username := usernames[p.EmployeeID]
		if !s.inScope(p.EmployeeID, username) {
			continue
		}
		if busy[p.EmployeeID] {
			pr.Skipped++
			continue
		}
		plan, ok := s.plan(ctx, p, pr)
		if !ok {
			continue
		}
		planned := plannedIn(plan, s.in.App)
		if len(planned) == 0 {
			continue
		}
		attrs := &connectors.Account{
			Username: username, EmployeeID: p.EmployeeID, GivenName: p.GivenName, FamilyName: p.FamilyName,
			DisplayName: p.DisplayName(), Email: p.Email,
		}
		it := s.item(reconcile.ClassMissing, username, p.EmployeeID, "", reconcile.ActionCreate,
			fmt.Sprintf("no account, though policy grants %s here", strings.Join(planned, ", ")))
		it.PolicyVersion, it.Attributes = plan.PolicyVersion, attrs
		it.Rules = appRulesOf(plan, s.in.App, planned)
		items = append(items, it)
		for _, e := range planned {
			g := s.grant(username, p.EmployeeID, e, plan)
			if username == "" {
				g.Attributes = attrs // to reserve the username first
			}
			items = append(items, g)
		}
	}
	if err := st.SaveItems(ctx, s.in.RunID, items); err != nil {
		return unavailable(op, err)
	}
	return nil
}

// compare finds the differences between an active person's account and
// what justifies it: the entitlements policy grants without approval,
// plus those the ledger holds from an approval or a temporary grant.
func (s *scanner) compare(acct connectors.Account, owner string, plan PlanAccessResult, held []ledger.Holding) []reconcile.Item {
	var items []reconcile.Item
	planned := plannedIn(plan, s.in.App)
	justified := set(planned)
	for _, h := range held {
		if h.Entitlement != "" && h.State == ledger.StateGranted && (h.ApprovalID != "" || h.Event == ledger.EventTemporary) {
			justified[h.Entitlement] = true
		}
	}
	has := set(acct.Entitlements)
	for _, e := range acct.Entitlements {
		switch {
		case s.app.Entitlement(e) == nil:
			items = append(items, s.item(reconcile.ClassUnmanaged, acct.Username, owner, e, reconcile.ActionNone,
				"entitlement not declared in the policy"))
		case !justified[e]:
			items = append(items, s.item(reconcile.ClassExcess, acct.Username, owner, e, reconcile.ActionRevoke,
				"neither policy nor an approved or temporary grant justifies it"))
		}
	}
	if acct.Disabled && len(planned) > 0 {
		it := s.item(reconcile.ClassMissing, acct.Username, owner, "", reconcile.ActionEnable,
			"account disabled, though "+owner+" is active and policy grants access here")
		it.PolicyVersion, it.Rules = plan.PolicyVersion, appRulesOf(plan, s.in.App, planned)
		items = append(items, it)
	}
	for _, e := range planned {
		if !has[e] {
			items = append(items, s.grant(acct.Username, owner, e, plan))
		}
	}
	return items
}

func (s *scanner) item(class reconcile.Class, account, owner, ent string, action reconcile.Action, reason string) reconcile.Item {
	return reconcile.Item{
		Class: class, Application: s.in.App, Account: account, EmployeeID: owner,
		Entitlement: ent, Action: action, Reason: reason, Status: reconcile.StatusFound,
	}
}

// grant is a missing entitlement policy grants, with the rules behind it.
func (s *scanner) grant(account, owner, ent string, plan PlanAccessResult) reconcile.Item {
	rules := slices.Clone(plan.Reasons[s.in.App+"/"+ent])
	it := s.item(reconcile.ClassMissing, account, owner, ent, reconcile.ActionGrant, "policy grants it: "+strings.Join(rules, "; "))
	if len(rules) == 0 {
		it.Reason = "policy grants it"
	}
	it.Rules, it.PolicyVersion = rules, plan.PolicyVersion
	return it
}

// plan asks policy what p should hold; a record policy cannot plan for is
// counted and logged, and the person left out of this run.
func (s *scanner) plan(ctx context.Context, p hr.Person, pr *ScanProgress) (PlanAccessResult, bool) {
	if err := p.Validate(); err != nil {
		pr.Unplanned++
		activity.GetLogger(ctx).Warn("Reconciliation cannot plan for an invalid HR record", "employeeId", p.EmployeeID, "error", err)
		return PlanAccessResult{}, false
	}
	plan, err := s.a.Planner.PlanAccess(ctx, p)
	if err != nil {
		pr.Unplanned++
		activity.GetLogger(ctx).Warn("Reconciliation cannot plan for a person", "employeeId", p.EmployeeID, "error", err)
		return PlanAccessResult{}, false
	}
	return plan, true
}

// plannedIn lists the entitlements a plan grants in app without approval,
// sorted.
func plannedIn(plan PlanAccessResult, app string) []string {
	for _, a := range plan.Applications {
		if a.Application == app {
			out := slices.Clone(a.Entitlements)
			slices.Sort(out)
			return slices.Compact(out)
		}
	}
	return nil
}

// appRulesOf are the rules behind the planned entitlements of app: why
// the person has an account there at all.
func appRulesOf(plan PlanAccessResult, app string, planned []string) []string {
	var out []string
	for _, e := range planned {
		out = append(out, plan.Reasons[app+"/"+e]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// FixBatchInput asks for the next fixes of a run.
type FixBatchInput struct {
	RunID string `json:"runId"`
	// Apps are the applications whose scan completed; fixes of others are
	// not handed out.
	Apps []string `json:"apps"`
	// Source is the roster feed of the run, to check again who is active.
	Source   string `json:"source,omitempty"`
	AfterSeq int64  `json:"afterSeq"`
	Limit    int    `json:"limit"`
}

// FixBatch is the next fixes to make, checked again just before.
type FixBatch struct {
	Items []reconcile.Item `json:"items,omitempty"`
	// Skipped counts items of the batch no longer right to fix (recorded
	// as skipped in the store).
	Skipped int `json:"skipped,omitempty"`
	// Next continues after the batch; Done is set when nothing follows.
	Next int64 `json:"next"`
	Done bool  `json:"done"`
}

// MaxFixBatch bounds a batch of fixes, which travels into the history.
const MaxFixBatch = 100

// ReconcileFixBatch hands out the next pending fixes of a run, in the order
// found. The world may have moved since the scan (and an approval may have
// taken hours), so each item is checked again: a person whose lifecycle run
// started since, an orphan's owner active again, a missing or excess item
// whose owner left, are recorded as skipped instead.
func (a *Activities) ReconcileFixBatch(ctx context.Context, in FixBatchInput) (FixBatch, error) {
	const op = "ReconcileFixBatch"
	switch {
	case strings.TrimSpace(in.RunID) == "":
		return FixBatch{}, invalid(op, "run ID is empty")
	case in.Limit < 1 || in.Limit > MaxFixBatch:
		return FixBatch{}, invalid(op, "limit must be 1 to %d, got %d", MaxFixBatch, in.Limit)
	case a.Reconciliation == nil || a.Reconciliation.Store == nil:
		return FixBatch{}, invalid(op, "this worker has no reconciliation store")
	}
	out := FixBatch{Next: in.AfterSeq, Done: true}
	if len(in.Apps) == 0 {
		return out, nil // no scan completed: nothing to fix
	}
	st := a.Reconciliation.Store
	items, err := st.Items(ctx, in.RunID, reconcile.ItemQuery{Apps: in.Apps, Pending: true, AfterSeq: in.AfterSeq, Limit: in.Limit})
	if err != nil {
		return FixBatch{}, unavailable(op, err)
	}
	if len(items) == 0 {
		return out, nil
	}
	out.Done = len(items) < in.Limit
	out.Next = items[len(items)-1].Seq
	var ids, noUser []string
	for _, it := range items {
		if it.EmployeeID != "" && !slices.Contains(ids, it.EmployeeID) {
			ids = append(ids, it.EmployeeID)
			if it.Account == "" {
				noUser = append(noUser, it.EmployeeID)
			}
		}
	}
	runs := a.Reconciliation.Runs
	if runs == nil {
		runs = VisibilityRuns{Client: activity.GetClient(ctx)}
	}
	busy, err := runs.InFlight(ctx, ids)
	if err != nil {
		return FixBatch{}, unavailable(op, err)
	}
	active, err := st.ActivePeople(ctx, in.Source, ids)
	if err != nil {
		return FixBatch{}, unavailable(op, err)
	}
	usernames, err := st.Usernames(ctx, noUser)
	if err != nil {
		return FixBatch{}, unavailable(op, err)
	}
	var skipped []reconcile.Outcome
	for _, it := range items {
		_, isActive := active[it.EmployeeID]
		why := ""
		switch {
		case it.EmployeeID == "":
			why = "no person to fix it for"
		case busy[it.EmployeeID]:
			why = "a lifecycle run of " + it.EmployeeID + " started since the scan"
		case it.Class == reconcile.ClassOrphan && isActive:
			why = it.EmployeeID + " is active again"
		case it.Class != reconcile.ClassOrphan && !isActive:
			why = it.EmployeeID + " is no longer active"
		}
		if why != "" {
			skipped = append(skipped, reconcile.Outcome{Seq: it.Seq, Status: reconcile.StatusSkipped, Note: why})
			continue
		}
		if it.Account == "" {
			it.Account = usernames[it.EmployeeID]
		}
		out.Items = append(out.Items, it)
	}
	if err := st.SetOutcomes(ctx, in.RunID, skipped); err != nil {
		return FixBatch{}, unavailable(op, err)
	}
	out.Skipped = len(skipped)
	return out, nil
}

// FixOutcomesInput are how a batch of fixes went.
type FixOutcomesInput struct {
	RunID    string              `json:"runId"`
	Outcomes []reconcile.Outcome `json:"outcomes"`
}

// RecordFixOutcomes stores how fixes went, for the report.
func (a *Activities) RecordFixOutcomes(ctx context.Context, in FixOutcomesInput) error {
	const op = "RecordFixOutcomes"
	if a.Reconciliation == nil || a.Reconciliation.Store == nil {
		return invalid(op, "this worker has no reconciliation store")
	}
	for _, o := range in.Outcomes {
		switch o.Status {
		case reconcile.StatusFixed, reconcile.StatusFailed, reconcile.StatusSkipped:
		default:
			return invalid(op, "item %d: status %q is not fixed, failed or skipped", o.Seq, o.Status)
		}
	}
	if err := a.Reconciliation.Store.SetOutcomes(ctx, in.RunID, in.Outcomes); err != nil {
		return unavailable(op, err)
	}
	return nil
}

// lifecycleEvents are the LifecycleEvent values of the runs reconciliation
// must not fight: a joiner, mover or leaver changes the same accounts.
// Temporary grants are not among them: the ledger justifies them.
var lifecycleEvents = []string{ledger.EventJoiner, EventMover, ledger.EventLeaver}

// inFlightChunk is how many employee IDs one visibility query names.
const inFlightChunk = 100

// VisibilityRuns finds lifecycle runs in flight with a visibility query on
// the EmployeeId and LifecycleEvent search attributes.
type VisibilityRuns struct {
	Client client.Client
}

// InFlight implements LifecycleRuns. Only well-formed employee IDs are
// asked about (IDs come from applications and are quoted into the query);
// the workflows accept no other, so no other can have a run.
func (v VisibilityRuns) InFlight(ctx context.Context, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	var valid []string
	for _, id := range ids {
		if hr.ValidEmployeeID(id) {
			valid = append(valid, id)
		}
	}
	if len(valid) == 0 {
		return out, nil
	}
	if v.Client == nil {
		return nil, errors.New("lifecycle runs: no Temporal client")
	}
	events := "'" + strings.Join(lifecycleEvents, "', '") + "'"
	for chunk := range slices.Chunk(valid, inFlightChunk) {
		query := fmt.Sprintf("EmployeeId IN ('%s') AND ExecutionStatus = 'Running' AND LifecycleEvent IN (%s)",
			strings.Join(chunk, "', '"), events)
		var token []byte
		for {
			resp, err := v.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Query: query, PageSize: 1000, NextPageToken: token,
			})
			if err != nil {
				return nil, fmt.Errorf("lifecycle runs of %d people: %w", len(chunk), err)
			}
			for _, e := range resp.GetExecutions() {
				p, ok := e.GetSearchAttributes().GetIndexedFields()["EmployeeId"]
				if !ok {
					continue
				}
				var id string
				if err := converter.GetDefaultDataConverter().FromPayload(p, &id); err == nil {
					out[id] = true
				}
			}
			if token = resp.GetNextPageToken(); len(token) == 0 {
				break
			}
		}
	}
	return out, nil
}

// unavailable is a store or Temporal failure during reconciliation: worth
// retrying, and the message names what failed.
func unavailable(op string, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return classify("reconciliation", op, connectors.Errorf(connectors.KindUnavailable, "reconciliation", op, nil, "%v", err))
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}
