package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/workflows"
)

// hire is one person the bench onboarded.
type hire struct {
	employeeID string
	username   string
	apps       []string
}

// bulkJoiners hires n generated people through the same path as the HR
// triggers and returns them once every account exists in every application,
// with the hires per second from the first start to the last completion.
func (b *bench) bulkJoiners(ctx context.Context, n int) ([]hire, float64, error) {
	roster, err := b.generateRoster(ctx, n)
	if err != nil {
		return nil, 0, err
	}
	begin := time.Now()
	hired, err := b.hireAll(ctx, roster)
	if err != nil {
		return nil, 0, err
	}
	rate := float64(n) / time.Since(begin).Seconds()
	if err := b.checkAccounts(ctx, hired); err != nil {
		return nil, 0, err
	}
	return hired, rate, nil
}

// hireAll starts every hire, as the roster sync does (it starts a run per
// joiner and does not wait for it), then waits for every onboarding.
// Starting them all at once is what builds the queue a leaver must not
// wait behind.
func (b *bench) hireAll(ctx context.Context, roster []hr.Person) ([]hire, error) {
	ids := make([]string, len(roster))
	for i, p := range roster {
		ids[i] = p.EmployeeID
	}
	b.people = append(b.people, ids...)
	receipts := make([]events.Receipt, len(roster))
	err := parallel(ctx, len(roster), startConcurrency, func(ctx context.Context, i int) error {
		p := roster[i]
		r, err := b.start.Start(ctx, events.Event{Type: events.TypeHire, Person: &p})
		if err != nil {
			return fmt.Errorf("hire %s: %w", p.EmployeeID, err)
		}
		if r.Outcome != events.OutcomeStarted {
			return fmt.Errorf("hire %s: %s, not a new run (%s)", p.EmployeeID, r.Outcome, r.Detail)
		}
		receipts[i] = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]hire, len(roster))
	err = parallel(ctx, len(roster), waitConcurrency, func(ctx context.Context, i int) error {
		r := receipts[i]
		var res workflows.OnboardingResult
		if err := b.c.GetWorkflow(ctx, r.WorkflowID, r.RunID).Get(ctx, &res); err != nil {
			return fmt.Errorf("onboarding of %s: %w", r.EmployeeID, err)
		}
		h := hire{employeeID: r.EmployeeID, username: res.Username}
		for _, a := range res.Accounts {
			h.apps = append(h.apps, a.Application)
		}
		slices.Sort(h.apps)
		out[i] = h
		return nil
	})
	if err != nil {
		return nil, err
	}
	if sp, ok := b.start.People.(*benchPeople); ok {
		sp.add(ids...)
	}
	return out, nil
}

// checkAccounts reads every account back from its application: the figure
// counts only hires whose accounts really exist and are enabled.
func (b *bench) checkAccounts(ctx context.Context, hired []hire) error {
	want := len(b.deps.Activities.Connectors)
	return parallel(ctx, len(hired), startConcurrency, func(ctx context.Context, i int) error {
		h := hired[i]
		if len(h.apps) != want {
			return fmt.Errorf("%s got accounts in %v, want all %d applications", h.employeeID, h.apps, want)
		}
		for _, app := range h.apps {
			a, err := b.deps.Activities.Connectors[app].GetAccount(ctx, connectors.AccountRequest{Username: h.username})
			if err != nil {
				return fmt.Errorf("%s in %s: %w", h.username, app, err)
			}
			if a.Disabled {
				return fmt.Errorf("%s in %s is disabled after onboarding", h.username, app)
			}
		}
		return nil
	})
}
