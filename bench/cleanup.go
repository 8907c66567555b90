package main

import (
	"context"
	"errors"

	"go.temporal.io/api/serviceerror"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/workflows"
)

// cleanup removes what the run created in the applications and ends the
// offboardings still waiting for their retention period, so repeated runs
// do not fill the demo stack with thousands of bench accounts. The listing
// seed is kept: it lives apart and is slow to build.
func (b *bench) cleanup(ctx context.Context) {
	if len(b.people) == 0 {
		return
	}
	b.logf("cleanup: %d people", len(b.people))
	_ = parallel(ctx, len(b.people), startConcurrency, func(ctx context.Context, i int) error {
		id := b.people[i]
		for _, wid := range []string{workflows.OffboardingID(id), workflows.OnboardingID(id)} {
			err := b.c.TerminateWorkflow(ctx, wid, "", "benchmark clean-up")
			var nf *serviceerror.NotFound
			if err != nil && !isNotFoundOrClosed(err, &nf) {
				b.logf("cleanup: terminate %s: %v", wid, err)
			}
		}
		name, ok, err := b.usernames.Lookup(ctx, id)
		if err != nil || !ok {
			return nil
		}
		for app, c := range b.deps.Activities.Connectors {
			if _, err := c.DeleteAccount(ctx, connectors.AccountRequest{Username: name}); err != nil {
				b.logf("cleanup: delete %s in %s: %v", name, app, err)
			}
		}
		return nil
	})
}

func isNotFoundOrClosed(err error, nf **serviceerror.NotFound) bool {
	var closed *serviceerror.FailedPrecondition
	return errors.As(err, nf) || errors.As(err, &closed)
}
