package httpserve

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A request in flight when the context ends still gets its answer, and
// Serve then returns cleanly.
func TestServeFinishesRequestsInFlight(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		time.Sleep(200 * time.Millisecond)
		_, _ = io.WriteString(w, "done")
	})
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, ln, h, "test server", Timeouts{ReadHeader: time.Second, Read: time.Second, Write: time.Second, Idle: time.Second, Shutdown: 5 * time.Second}, nil)
	}()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-started
	cancel()
	assert.Equal(t, "done", <-got)
	require.NoError(t, <-served)
	_, err = http.Get("http://" + ln.Addr().String())
	assert.Error(t, err, "no new connections after shutdown")
}

// A listener that fails is an error named after the server.
func TestServeReportsAFailedListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, ln.Close())
	err = Serve(context.Background(), ln, http.NotFoundHandler(), "test server", Timeouts{Shutdown: time.Second}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "test server: ")
}
