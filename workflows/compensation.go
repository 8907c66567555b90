package workflows

import (
	"errors"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// undoStep is one compensating action, recorded before the step it undoes
// runs: a step whose activity timed out may still have taken effect, so its
// undo must exist whatever the outcome. Every undo is idempotent. run gets
// why the run is undone, for the access ledger.
type undoStep struct {
	summary string
	run     func(ctx workflow.Context, why string) error
}

// saga collects the undo steps of one application in order.
type saga struct {
	steps []undoStep
}

func (s *saga) add(summary string, run func(ctx workflow.Context, why string) error) {
	s.steps = append(s.steps, undoStep{summary: summary, run: run})
}

// compensate runs the undo steps of every saga, each saga in reverse order
// and the sagas in parallel (applications are independent), on a
// disconnected context so it also runs after the workflow was cancelled.
// It returns only when every undo finished; undo activities retry until they
// succeed, so an error here means input that can never be undone. why says
// what the run undoes, for the ledger entry of each undo.
func compensate(ctx workflow.Context, sagas []*saga, why string) []error {
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	errs := make([]error, len(sagas))
	wg := workflow.NewWaitGroup(dctx)
	for i, s := range sagas {
		if len(s.steps) == 0 {
			continue
		}
		wg.Add(1)
		workflow.Go(dctx, func(gctx workflow.Context) {
			defer wg.Done()
			for j := len(s.steps) - 1; j >= 0; j-- {
				if err := s.steps[j].run(gctx, why); err != nil {
					workflow.GetLogger(gctx).Error("Compensation step failed", "step", s.steps[j].summary, "error", err)
					errs[i] = err
				}
			}
		})
	}
	wg.Wait(dctx)
	return errs
}

// undoRun is how a run that grants access ends after cause: it stops the
// run's approval requests (their grants in flight finish, so compensation
// sees every step that may have taken effect), then compensates every
// application. It reports whether the run was cancelled rather than failed,
// and the undo steps that could not be done; those also flag the run with
// NeedsAttention, since access may remain.
func undoRun(ctx workflow.Context, cause error, book *approvalBook, process string, apps []*appRun) (cancelled bool, undoErr error) {
	cancelled = ctx.Err() != nil || temporal.IsCanceledError(cause)
	why := "the " + process + " failed"
	if cancelled {
		why = "the " + process + " was cancelled"
	}
	book.stop(ctx, why)
	sagas := make([]*saga, len(apps))
	for i, a := range apps {
		sagas[i] = &a.saga
	}
	note := why
	if !cancelled {
		note = undoReason(why, cause)
	}
	undoErr = errors.Join(compensate(ctx, sagas, note)...)
	if undoErr != nil && !cancelled {
		_ = workflow.UpsertTypedSearchAttributes(ctx, AttrNeedsAttention.ValueSet(true))
	}
	return cancelled, undoErr
}
