package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/client"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// FloorInput is the fan-out of one floor run: as many no-op activities as a
// real onboarding or offboarding touches applications.
type FloorInput struct {
	FanOut int `json:"fanOut"`
}

// FloorWorkflow is the floor: the same shape as a lifecycle run (one
// activity per application, in parallel) doing no work, so its latency and
// throughput are what this server, machine and worker can do at best.
func FloorWorkflow(ctx workflow.Context, in FloorInput) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second},
	})
	futures := make([]workflow.Future, in.FanOut)
	for i := range futures {
		futures[i] = workflow.ExecuteActivity(ctx, FloorActivity, i)
	}
	for _, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// FloorActivity does nothing: the floor measures Temporal, not work.
func FloorActivity(_ context.Context, _ int) error { return nil }

// floorFigures are the floor's throughput and single-run latency.
type floorFigures struct {
	throughput float64
	latency    latencies
}

// measureFloor starts n floor runs at once for throughput, then times
// runs one after another for latency, as the kill switch is timed.
func (b *bench) measureFloor(ctx context.Context, fanOut int) (floorFigures, error) {
	var f floorFigures
	opts := func(i int, kind string) client.StartWorkflowOptions {
		return client.StartWorkflowOptions{ID: fmt.Sprintf("%s-%s-%d", b.floorQ, kind, i), TaskQueue: b.floorQ}
	}
	begin := time.Now()
	runs := make([]client.WorkflowRun, b.o.floorN)
	err := parallel(ctx, b.o.floorN, startConcurrency, func(ctx context.Context, i int) error {
		var err error
		runs[i], err = b.c.ExecuteWorkflow(ctx, opts(i, "bulk"), FloorWorkflow, FloorInput{FanOut: fanOut})
		return err
	})
	if err != nil {
		return f, err
	}
	err = parallel(ctx, b.o.floorN, waitConcurrency, func(ctx context.Context, i int) error {
		return runs[i].Get(ctx, nil)
	})
	if err != nil {
		return f, err
	}
	f.throughput = float64(b.o.floorN) / time.Since(begin).Seconds()
	ds := make([]time.Duration, 0, b.o.leavers)
	for i := range b.o.leavers {
		t0 := time.Now()
		run, err := b.c.ExecuteWorkflow(ctx, opts(i, "seq"), FloorWorkflow, FloorInput{FanOut: fanOut})
		if err != nil {
			return f, err
		}
		if err := run.Get(ctx, nil); err != nil {
			return f, err
		}
		ds = append(ds, time.Since(t0))
	}
	f.latency = summarise(ds)
	return f, nil
}

// startConcurrency bounds how many starts are in flight at once, as an HR
// import or the roster sync would: enough to keep the server busy.
const startConcurrency = 32

// waitConcurrency bounds the goroutines waiting for results; waiting costs
// a long poll each, not work.
const waitConcurrency = 256

// parallel runs fn for 0..n-1 with at most width at a time and returns the
// first error.
func parallel(ctx context.Context, n, width int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}
