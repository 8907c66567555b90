package workflows

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/internal/ledger"
	"github.com/provisio-dev/provisio/internal/reconcile"
)

// UpdateApproveFixes decides a fix run held at its change cap: approve
// lets it make every planned fix, reject ends it with nothing changed.
const UpdateApproveFixes = "approve-fixes"

// Reconciliation defaults and bounds.
const (
	// DefaultReconcileCap is the most changes a fix run makes without an
	// operator's approval: a roster emptied by mistake would otherwise
	// disable a whole application.
	DefaultReconcileCap = 50
	// DefaultFixApprovalTimeout is how long a held fix run waits for a
	// decision before it ends with nothing changed.
	DefaultFixApprovalTimeout = 24 * time.Hour
	// MaxFixApprovalTimeout bounds the wait.
	MaxFixApprovalTimeout = 30 * 24 * time.Hour
	// fixBatchSize is how many fixes one batch activity hands out.
	fixBatchSize = 25
	// reconcileHistoryLimit is the history length after which a fix run
	// continues as new; the server suggests it earlier for large events.
	reconcileHistoryLimit = 10000
	// maxCommentLen bounds an approver's comment.
	maxCommentLen = 500
)

// Outcomes of a reconciliation (ReconcileResult.Status).
const (
	ReconcileCompleted = "completed"
	ReconcileRejected  = "rejected"
	ReconcileExpired   = "expired"
)

// ReconcileInput starts a reconciliation.
type ReconcileInput struct {
	// Apps are the applications to reconcile; empty means every
	// application of the policy the worker has a connector for.
	Apps []string `json:"apps,omitempty"`
	// Fix makes the fixes; without it the run only reports.
	Fix bool `json:"fix,omitempty"`
	// Cap is the most changes made without approval; 0 means
	// DefaultReconcileCap unless CapPercent is set.
	Cap int `json:"cap,omitempty"`
	// CapPercent caps the changes at this percentage of the accounts
	// scanned (at least one); with Cap set too, the lower cap applies.
	CapPercent int `json:"capPercent,omitempty"`
	// Source is the roster feed that says who is active; empty means
	// active in any feed.
	Source string `json:"source,omitempty"`
	// Scope restricts the run to some people and accounts.
	Scope    activities.ReconcileScope `json:"scope,omitzero"`
	PageSize int                       `json:"pageSize,omitempty"`
	// Samples is how many items of each class per application the result
	// lists; the store keeps them all.
	Samples int `json:"samples,omitempty"`
	// ApprovalTimeout is how long a held fix run waits for a decision; 0
	// means DefaultFixApprovalTimeout.
	ApprovalTimeout time.Duration `json:"approvalTimeout,omitempty"`
	// Resume carries a fix run across continue-as-new; callers leave it
	// nil.
	Resume *ReconcileResume `json:"resume,omitempty"`
}

// ReconcileResume is where a fix run continues after continue-as-new.
type ReconcileResume struct {
	Result ReconcileResult `json:"result"`
	// FixApps are the applications whose scan completed.
	FixApps []string `json:"fixApps"`
	// After is the last item handed out.
	After int64 `json:"after"`
}

// AppReconcile is what one application's scan found.
type AppReconcile struct {
	activities.ScanResult
	// Error is set when the scan failed for good; the application's
	// findings so far are in the store but nothing there is fixed.
	Error string `json:"error,omitempty"`
}

// FixDecision is an operator's answer to a held fix run.
type FixDecision struct {
	// ApproverID is the employee ID of whoever decides.
	ApproverID string `json:"approverId"`
	Approve    bool   `json:"approve"`
	Comment    string `json:"comment,omitempty"`
	// DecidedAt is set by the workflow.
	DecidedAt time.Time `json:"decidedAt,omitzero"`
}

// ReconcileResult is the report of a reconciliation. The full list of
// items is in the store under RunID.
type ReconcileResult struct {
	// RunID is the workflow ID: the key of the items in the store.
	RunID string `json:"runId"`
	// Mode is report or fix.
	Mode string `json:"mode"`
	// Status is completed, rejected (fixes refused) or expired (nobody
	// decided in time); empty while the run is going on.
	Status string `json:"status,omitempty"`
	// Apps are sorted by name.
	Apps []AppReconcile `json:"apps"`
	// Totals count the items of every application by class.
	Totals map[reconcile.Class]int `json:"totals"`
	// PlannedFixes is how many changes fix mode found to make, Cap the
	// most it makes without approval.
	PlannedFixes int          `json:"plannedFixes"`
	Cap          int          `json:"cap,omitempty"`
	Approval     *FixDecision `json:"approval,omitempty"`
	// Fixed, Failed and Skipped count fixes made, failed, and left out
	// because the person's situation changed since the scan.
	Fixed   int `json:"fixed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// ReconcileState answers QueryState.
type ReconcileState struct {
	State string `json:"state"`
	// Scanning are the applications still being scanned.
	Scanning []string        `json:"scanning,omitempty"`
	Result   ReconcileResult `json:"result"`
	// ApprovalDeadline is when a held fix run gives up waiting.
	ApprovalDeadline time.Time `json:"approvalDeadline,omitzero"`
}

// Reconcile compares every application with what HR and policy say it
// should hold and, in fix mode, heals the difference. The applications are
// scanned in parallel, each by one heartbeating activity that pages through
// the accounts and keeps its findings in the store; the workflow sees only
// counts and a few samples. Fix mode then hands out the fixes in small
// batches and makes each through the same activities the lifecycle
// workflows use, recorded in the ledger as event reconciliation with this
// run's ID. More fixes than the cap hold the run until an operator
// approves (UpdateApproveFixes) or the approval times out.
func Reconcile(ctx workflow.Context, in ReconcileInput) (ReconcileResult, error) {
	r := &reconciler{in: in}
	r.res.RunID = workflow.GetInfo(ctx).WorkflowExecution.ID
	r.res.Mode = "report"
	if in.Fix {
		r.res.Mode = "fix"
	}
	if err := workflow.SetQueryHandler(ctx, QueryState, r.state); err != nil {
		return ReconcileResult{}, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateApproveFixes, r.decide,
		workflow.UpdateHandlerOptions{Validator: r.validate}); err != nil {
		return ReconcileResult{}, err
	}
	if err := validateReconcile(in); err != nil {
		r.setState(ctx, StateFailed)
		return ReconcileResult{}, temporal.NewNonRetryableApplicationError("invalid reconciliation: "+err.Error(), string(connectors.KindInvalid), nil)
	}
	return r.run(ctx)
}

type reconciler struct {
	in       ReconcileInput
	res      ReconcileResult
	st       string
	scanning []string
	fixApps  []string
	after    int64
	decision *FixDecision
	deadline time.Time
}

func (r *reconciler) state() (ReconcileState, error) {
	res := r.res
	res.Apps = slices.Clone(r.res.Apps)
	return ReconcileState{State: r.st, Scanning: slices.Clone(r.scanning), Result: res, ApprovalDeadline: r.deadline}, nil
}

func (r *reconciler) setState(ctx workflow.Context, state string) {
	r.st = state
	workflow.SetCurrentDetails(ctx, "State: "+state)
	if err := workflow.UpsertTypedSearchAttributes(ctx, AttrLifecycleState.ValueSet(state)); err != nil {
		workflow.GetLogger(ctx).Warn("Cannot upsert state", "error", err)
	}
}

func (r *reconciler) run(ctx workflow.Context) (ReconcileResult, error) {
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrLifecycleEvent.ValueSet(EventReconciliation))
	if rs := r.in.Resume; rs != nil {
		r.res, r.fixApps, r.after = rs.Result, rs.FixApps, rs.After
		return r.fixAll(ctx)
	}
	r.setState(ctx, StateScanning)
	if err := r.scan(ctx); err != nil {
		r.setState(ctx, StateFailed)
		return ReconcileResult{}, err
	}
	if !r.in.Fix || r.res.PlannedFixes == 0 {
		return r.finish(ctx, ReconcileCompleted, StateCompleted), nil
	}
	if r.res.PlannedFixes > r.res.Cap {
		if done, ok := r.awaitApproval(ctx); !ok {
			return done, nil
		}
	}
	return r.fixAll(ctx)
}

// scan runs every application's scan in parallel and collects the
// summaries as they come.
func (r *reconciler) scan(ctx workflow.Context) error {
	apps := slices.Clone(r.in.Apps)
	if len(apps) == 0 {
		if err := workflow.ExecuteActivity(storeOptions(ctx, "List applications"), acts.ReconcileApplications).Get(ctx, &apps); err != nil {
			return fmt.Errorf("list applications: %w", err)
		}
		if len(apps) == 0 {
			return temporal.NewNonRetryableApplicationError("no application to reconcile: the policy names none this worker has a connector for", string(connectors.KindInvalid), nil)
		}
	}
	r.scanning = slices.Clone(apps)
	sel := workflow.NewSelector(ctx)
	for _, app := range apps {
		f := workflow.ExecuteActivity(scanOptions(ctx, "Scan "+app), acts.ScanApplication, activities.ScanInput{
			RunID: r.res.RunID, App: app, Source: r.in.Source, Scope: r.in.Scope,
			PageSize: r.in.PageSize, Samples: r.in.Samples,
		})
		sel.AddFuture(f, func(f workflow.Future) {
			rep := AppReconcile{}
			if err := f.Get(ctx, &rep.ScanResult); err != nil {
				rep.Error = err.Error()
				workflow.GetLogger(ctx).Error("Scan failed", "app", app, "error", err)
			}
			rep.App = app
			r.res.Apps = append(r.res.Apps, rep)
			r.scanning = slices.DeleteFunc(r.scanning, func(s string) bool { return s == app })
		})
	}
	for range apps {
		sel.Select(ctx)
	}
	slices.SortFunc(r.res.Apps, func(a, b AppReconcile) int { return strings.Compare(a.App, b.App) })

	r.res.Totals = map[reconcile.Class]int{}
	accounts := 0
	for _, a := range r.res.Apps {
		for _, c := range reconcile.Classes {
			r.res.Totals[c] += a.Counts[c]
		}
		if a.Error == "" {
			r.fixApps = append(r.fixApps, a.App)
			r.res.PlannedFixes += a.Fixes
			accounts += a.Accounts
		}
	}
	r.res.Cap = reconcileCap(r.in, accounts)
	if len(r.fixApps) < len(r.res.Apps) {
		_ = workflow.UpsertTypedSearchAttributes(ctx, AttrNeedsAttention.ValueSet(true))
	}
	return nil
}

// reconcileCap is the most changes a run makes without approval.
func reconcileCap(in ReconcileInput, accounts int) int {
	c := in.Cap
	if in.CapPercent > 0 {
		pct := max(accounts*in.CapPercent/100, 1)
		if c == 0 || pct < c {
			c = pct
		}
	}
	if c == 0 {
		c = DefaultReconcileCap
	}
	return c
}

// awaitApproval holds a fix run whose planned fixes exceed the cap until an
// operator decides or the wait times out. It returns false with the final
// result when the run must end without fixing.
func (r *reconciler) awaitApproval(ctx workflow.Context) (ReconcileResult, bool) {
	wait := r.in.ApprovalTimeout
	if wait == 0 {
		wait = DefaultFixApprovalTimeout
	}
	r.deadline = workflow.Now(ctx).Add(wait)
	r.setState(ctx, StateWaitingApproval)
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrNeedsAttention.ValueSet(true))
	workflow.GetLogger(ctx).Warn("Planned fixes exceed the cap; waiting for approval", "planned", r.res.PlannedFixes, "cap", r.res.Cap)
	decided, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return r.decision != nil })
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrNeedsAttention.ValueSet(len(r.fixApps) < len(r.res.Apps)))
	r.deadline = time.Time{}
	switch {
	case err != nil || !decided:
		return r.finish(ctx, ReconcileExpired, StateExpired), false
	case !r.decision.Approve:
		return r.finish(ctx, ReconcileRejected, StateRejected), false
	}
	return ReconcileResult{}, true
}

func (r *reconciler) validate(d FixDecision) error {
	switch {
	case r.st != StateWaitingApproval || r.decision != nil:
		return fmt.Errorf("run %s is not waiting for approval (state %s)", r.res.RunID, r.st)
	case !hr.ValidEmployeeID(d.ApproverID):
		return fmt.Errorf("approver %q is not an employee ID (E followed by 6 digits)", d.ApproverID)
	case len(d.Comment) > maxCommentLen:
		return fmt.Errorf("comment is longer than %d bytes", maxCommentLen)
	}
	return nil
}

// decide records a validated decision; the waiting run picks it up.
func (r *reconciler) decide(ctx workflow.Context, d FixDecision) (ReconcileState, error) {
	// Validators are skipped on replay; the check is deterministic.
	if err := r.validate(d); err != nil {
		return ReconcileState{}, temporal.NewNonRetryableApplicationError(err.Error(), "DecisionRefused", nil)
	}
	d.DecidedAt = workflow.Now(ctx)
	r.decision = &d
	r.res.Approval = &d
	workflow.GetLogger(ctx).Info("Fix decision", "approver", d.ApproverID, "approve", d.Approve)
	return r.state()
}

// fixAll makes the fixes batch by batch, continuing as new when the
// history grows long.
func (r *reconciler) fixAll(ctx workflow.Context) (ReconcileResult, error) {
	r.setState(ctx, StateFixing)
	for {
		var b activities.FixBatch
		if err := workflow.ExecuteActivity(storeOptions(ctx, "Next fixes"), acts.ReconcileFixBatch, activities.FixBatchInput{
			RunID: r.res.RunID, Apps: r.fixApps, Source: r.in.Source, AfterSeq: r.after, Limit: fixBatchSize,
		}).Get(ctx, &b); err != nil {
			r.setState(ctx, StateFailed)
			return ReconcileResult{}, fmt.Errorf("next fixes: %w", err)
		}
		r.res.Skipped += b.Skipped
		outs := make([]reconcile.Outcome, 0, len(b.Items))
		for _, it := range b.Items {
			outs = append(outs, r.fix(ctx, it))
		}
		if len(outs) > 0 {
			if err := workflow.ExecuteActivity(storeOptions(ctx, "Record fix outcomes"), acts.RecordFixOutcomes,
				activities.FixOutcomesInput{RunID: r.res.RunID, Outcomes: outs}).Get(ctx, nil); err != nil {
				r.setState(ctx, StateFailed)
				return ReconcileResult{}, fmt.Errorf("record fix outcomes: %w", err)
			}
		}
		r.after = b.Next
		if b.Done {
			return r.finish(ctx, ReconcileCompleted, StateCompleted), nil
		}
		if info := workflow.GetInfo(ctx); info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() > reconcileHistoryLimit {
			next := r.in
			next.Resume = &ReconcileResume{Result: r.res, FixApps: r.fixApps, After: r.after}
			return ReconcileResult{}, workflow.NewContinueAsNewError(ctx, Reconcile, next)
		}
	}
}

// fix makes one fix and says how it went. A failed fix does not stop the
// others: it is reported, and the next run finds it again.
func (r *reconciler) fix(ctx workflow.Context, it reconcile.Item) reconcile.Outcome {
	out := reconcile.Outcome{Seq: it.Seq, Status: reconcile.StatusFixed}
	if err := r.apply(ctx, it); err != nil {
		out.Status, out.Note = reconcile.StatusFailed, ledgerNote("", err.Error())
		r.res.Failed++
		workflow.GetLogger(ctx).Warn("Fix failed", "item", it.Seq, "class", it.Class, "app", it.Application, "error", err)
		return out
	}
	r.res.Fixed++
	return out
}

// apply makes one item's change through the activities the lifecycle
// workflows use, so the ledger records it like any other change, with the
// reconciliation event and this run's ID in the note.
func (r *reconciler) apply(ctx workflow.Context, it reconcile.Item) error {
	au := audit(it.EmployeeID, ledger.EventReconciliation, it.PolicyVersion)
	if it.Action == reconcile.ActionGrant || it.Action == reconcile.ActionCreate || it.Action == reconcile.ActionEnable {
		au.Rules = slices.Clone(it.Rules)
	}
	au = withNote(au, fmt.Sprintf("reconciliation %s: %s: %s", r.res.RunID, it.Class, it.Reason))
	username := it.Account
	if username == "" {
		if it.Attributes == nil {
			return errors.New("no username is reserved for " + it.EmployeeID + " and the item carries no names to reserve one")
		}
		var u activities.ReserveUsernameResult
		if err := workflow.ExecuteActivity(provisionOptions(ctx, "Reserve username"), acts.ReserveUsername, activities.ReserveUsernameInput{
			EmployeeID: it.EmployeeID, GivenName: it.Attributes.GivenName, FamilyName: it.Attributes.FamilyName,
		}).Get(ctx, &u); err != nil {
			return err
		}
		username = u.Username
	}
	app := it.Application
	switch it.Action {
	case reconcile.ActionCreate:
		if it.Attributes == nil {
			return errors.New("the item carries no attributes for the account")
		}
		acct := *it.Attributes
		acct.Username, acct.EmployeeID = username, it.EmployeeID
		return workflow.ExecuteActivity(provisionOptions(ctx, "Fix: create account in "+app), acts.EnsureAccount,
			activities.EnsureAccountInput{App: app, Account: acct, Audit: au}).Get(ctx, nil)
	case reconcile.ActionGrant:
		return workflow.ExecuteActivity(provisionOptions(ctx, "Fix: grant in "+app), acts.GrantEntitlement,
			activities.EntitlementInput{App: app, Username: username, Entitlement: it.Entitlement, Audit: au}).Get(ctx, nil)
	case reconcile.ActionEnable:
		return workflow.ExecuteActivity(provisionOptions(ctx, "Fix: enable account in "+app), acts.EnableAccount,
			activities.AccountInput{App: app, Username: username, Audit: au}).Get(ctx, nil)
	case reconcile.ActionRevoke:
		return workflow.ExecuteActivity(deprovisionOptions(ctx, "Fix: revoke in "+app), acts.RevokeEntitlement,
			activities.EntitlementInput{App: app, Username: username, Entitlement: it.Entitlement, Audit: au}).Get(ctx, nil)
	case reconcile.ActionDisable:
		return workflow.ExecuteActivity(deprovisionOptions(ctx, "Fix: disable account in "+app), acts.DisableAccount,
			activities.AccountInput{App: app, Username: username, Audit: au}).Get(ctx, nil)
	}
	return fmt.Errorf("item %d: no fix for action %q", it.Seq, it.Action)
}

func (r *reconciler) finish(ctx workflow.Context, status, state string) ReconcileResult {
	r.res.Status = status
	r.setState(ctx, state)
	return r.res
}

// scanOptions govern one application's scan: long (a large application
// takes a while), heartbeating after every page so a dead worker is noticed
// in minutes, and retried a bounded number of times, each retry resuming
// from the last heartbeat.
func scanOptions(ctx workflow.Context, summary string) workflow.Context {
	return withOptions(ctx, summary, 6*time.Hour, 2*time.Minute, time.Minute, 10, nonRetryable)
}

// storeOptions govern reconciliation's bookkeeping in its own store: short
// calls retried until the store answers, since giving up would leave a run
// half fixed with no record of it.
func storeOptions(ctx workflow.Context, summary string) workflow.Context {
	return withOptions(ctx, summary, time.Minute, 0, time.Minute, 0, invalidOnly)
}

var reconcileSourceRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// validateReconcile checks the input, naming the first field that is
// wrong.
func validateReconcile(in ReconcileInput) error {
	switch {
	case in.Cap < 0:
		return fmt.Errorf("cap must not be negative, got %d", in.Cap)
	case in.CapPercent < 0 || in.CapPercent > 100:
		return fmt.Errorf("cap percent must be 0 to 100, got %d", in.CapPercent)
	case in.PageSize < 0 || in.PageSize > connectors.MaxPageSize:
		return fmt.Errorf("page size must be 0 to %d, got %d", connectors.MaxPageSize, in.PageSize)
	case in.Samples < 0 || in.Samples > activities.MaxReconcileSamples:
		return fmt.Errorf("samples must be 0 to %d, got %d", activities.MaxReconcileSamples, in.Samples)
	case in.ApprovalTimeout < 0 || in.ApprovalTimeout > MaxFixApprovalTimeout:
		return fmt.Errorf("approval timeout must be 0 to %s, got %s", MaxFixApprovalTimeout, in.ApprovalTimeout)
	case in.Source != "" && !reconcileSourceRe.MatchString(in.Source):
		return fmt.Errorf("source %q is not a feed name (a-z 0-9 . _ -)", in.Source)
	}
	for i, app := range in.Apps {
		if strings.TrimSpace(app) == "" {
			return fmt.Errorf("apps[%d] is empty", i)
		}
		if slices.Contains(in.Apps[:i], app) {
			return fmt.Errorf("application %q is listed twice", app)
		}
	}
	for _, id := range in.Scope.EmployeeIDs {
		if !hr.ValidEmployeeID(id) {
			return fmt.Errorf("scope: employee ID %q is not E followed by 6 digits", id)
		}
	}
	for _, a := range in.Scope.Accounts {
		if strings.TrimSpace(a) == "" {
			return errors.New("scope: an account name is empty")
		}
	}
	return nil
}
