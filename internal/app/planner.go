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
// human step; approval-gated and temporary-only items are deferred with the
// reason, so they are visible in the result rather than silently dropped.
func FromPlan(plan policy.Plan) activities.PlanAccessResult {
	res := activities.PlanAccessResult{PolicyVersion: plan.PolicyVersion, Reasons: map[string][]string{}}
	// Items are sorted by application, then entitlement.
	for _, it := range plan.Items {
		switch {
		case len(it.Approvals) > 0:
			res.Deferred = append(res.Deferred, activities.DeferredAccess{
				Application: it.Application, Entitlement: it.Entitlement, Reason: "needs approval"})
			continue
		case it.Temporary:
			res.Deferred = append(res.Deferred, activities.DeferredAccess{
				Application: it.Application, Entitlement: it.Entitlement, Reason: "temporary access only: request it"})
			continue
		}
		n := len(res.Applications)
		if n == 0 || res.Applications[n-1].Application != it.Application {
			res.Applications = append(res.Applications, activities.AppAccess{Application: it.Application})
			n++
		}
		res.Applications[n-1].Entitlements = append(res.Applications[n-1].Entitlements, it.Entitlement)
		why := make([]string, len(it.Reasons))
		for i, r := range it.Reasons {
			why[i] = r.String()
		}
		res.Reasons[it.Ref().String()] = why
	}
	return res
}
