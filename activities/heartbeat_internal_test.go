package activities

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHeartbeatEveryBeatsUntilStopped(t *testing.T) {
	var beats atomic.Int32
	stop := heartbeatEvery(context.Background(), 10*time.Millisecond, func(context.Context, ...any) { beats.Add(1) })
	time.Sleep(100 * time.Millisecond)
	stop()
	after := beats.Load()
	require.GreaterOrEqual(t, after, int32(3), "a long wait heartbeats")
	time.Sleep(50 * time.Millisecond)
	require.Equal(t, after, beats.Load(), "no heartbeat after stop")
}

func TestHeartbeatEveryStopsWithTheActivityContext(t *testing.T) {
	var beats atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	stop := heartbeatEvery(ctx, 10*time.Millisecond, func(context.Context, ...any) { beats.Add(1) })
	cancel()
	stop() // returns at once: the goroutine already ended with ctx
	after := beats.Load()
	time.Sleep(50 * time.Millisecond)
	require.Equal(t, after, beats.Load())
}
