package activities

import (
	"context"
	"time"
)

// heartbeatEvery records a heartbeat at the given interval until the
// returned stop is called, so a long wait on a worker that died is noticed
// within the heartbeat timeout instead of the whole start-to-close timeout.
// record is activity.RecordHeartbeat in production.
func heartbeatEvery(ctx context.Context, every time.Duration, record func(context.Context, ...any)) (stop func()) {
	hctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
				record(ctx)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}
