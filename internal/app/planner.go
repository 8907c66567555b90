package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/policy"
)

// policyPlanner answers activities.Planner from the policy in force, which
// a background watcher reloads when the file changes.
type policyPlanner struct {
	w    *policy.Watcher
	stop func()
}

// newPolicyPlanner loads the policy (a broken file stops the worker from
// starting) and starts reloading it until stop is called.
func newPolicyPlanner(ctx context.Context, path string, logger *slog.Logger) (*policyPlanner, error) {
	w, err := policy.NewWatcher(path, policy.WatcherOptions{
		OnReload: func(p *policy.Policy) { logger.Info("Policy reloaded", "version", p.Version) },
		OnError: func(err error) {
			logger.Error("Policy file rejected; the previous policy stays in force", "error", err)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	logger.Info("Policy loaded", "file", path, "version", w.Current().Version)
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = w.Run(wctx)
	}()
	return &policyPlanner{w: w, stop: func() { cancel(); wg.Wait() }}, nil
}

// PlanAccess implements activities.Planner.
func (p *policyPlanner) PlanAccess(_ context.Context, person hr.Person) (activities.PlanAccessResult, error) {
	plan, err := p.w.Current().Plan(person)
	if err != nil {
		return activities.PlanAccessResult{}, err
	}
	return FromPlan(plan), nil
}

// FromPlan keeps, per application, the entitlements a joiner gets without a
// human step, and carries each approval-gated item with its resolved steps,
// so the workflow asks for them while the rest goes ahead. Temporary-only
// items are deferred with the reason: they are requested separately, never
// granted at hire, and stay visible in the result rather than silently
// dropped.
func FromPlan(plan policy.Plan) activities.PlanAccessResult {
	res := activities.PlanAccessResult{PolicyVersion: plan.PolicyVersion, Reasons: map[string][]string{}}
	if plan.Leaver != nil && !plan.Leaver.Date.IsZero() {
		res.LeaverDate, res.LeaverReason = plan.Leaver.Date, plan.Leaver.Reason
	}
	// Items are sorted by application, then entitlement.
	for _, it := range plan.Items {
		switch {
		case it.Temporary:
			// Temporary-only access is requested on its own, with its own
			// approval, never granted at hire.
			res.Deferred = append(res.Deferred, activities.DeferredAccess{
				Application: it.Application, Entitlement: it.Entitlement, Reason: "temporary access only: request it"})
			continue
		case len(it.Approvals) > 0:
			res.Approvals = append(res.Approvals, activities.ApprovalItem{
				Application: it.Application, Entitlement: it.Entitlement, Steps: approvalSteps(it.Approvals)})
		default:
			n := len(res.Applications)
			if n == 0 || res.Applications[n-1].Application != it.Application {
				res.Applications = append(res.Applications, activities.AppAccess{Application: it.Application})
				n++
			}
			res.Applications[n-1].Entitlements = append(res.Applications[n-1].Entitlements, it.Entitlement)
		}
		why := make([]string, len(it.Reasons))
		for i, r := range it.Reasons {
			why[i] = r.String()
		}
		res.Reasons[it.Ref().String()] = why
	}
	return res
}

func approvalSteps(steps []policy.ApprovalStep) []activities.ApprovalStep {
	out := make([]activities.ApprovalStep, len(steps))
	for i, s := range steps {
		out[i] = activities.ApprovalStep{
			Kind: string(s.Kind), ApproverID: s.ApproverID, EscalateAfter: s.EscalateAfter, ExpireAfter: s.ExpireAfter,
			Fallback: s.Fallback, Unresolved: s.Unresolved,
		}
	}
	return out
}
