package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/provisio-dev/provisio/internal/events"
	"github.com/provisio-dev/provisio/internal/hr"
)

// memReplays is a ReplayStore in memory.
type memReplays struct {
	mu   sync.Mutex
	seen map[string]time.Time
	err  error
}

func (m *memReplays) Remember(_ context.Context, sig string, expires time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return false, m.err
	}
	if _, ok := m.seen[sig]; ok {
		return false, nil
	}
	m.seen[sig] = expires
	return true, nil
}

func (m *memReplays) Forget(_ context.Context, sig string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.seen, sig)
	return nil
}

// fakeStarter records the events it gets and answers with err, or with
// a started receipt.
type fakeStarter struct {
	mu     sync.Mutex
	got    []events.Event
	err    error
	shapes bool // run Validate like the real Starter
}

func (f *fakeStarter) Start(_ context.Context, e events.Event) (events.Receipt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shapes {
		if err := e.Validate(); err != nil {
			return events.Receipt{}, err
		}
	}
	if f.err != nil {
		return events.Receipt{}, f.err
	}
	f.got = append(f.got, e)
	return events.Receipt{Type: e.Type, EmployeeID: e.Subject(), WorkflowID: "offboarding-" + e.Subject(),
		RunID: "run-1", Outcome: events.OutcomeStarted, URL: "http://ui/x"}, nil
}

type request struct {
	method string
	path   string
	body   []byte
	// ts and sig override the headers; "-" drops one.
	ts, sig string
}

const terminateBody = `{"type":"terminate","employee_id":"E100001","effective":"2026-12-31"}`

// signed is a POST of body signed now.
func signed(body string) request {
	return request{method: http.MethodPost, path: EventsPath, body: []byte(body)}
}

func (r request) send(t *testing.T, h http.Handler) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(r.method, r.path, bytes.NewReader(r.body))
	ts, sig := strconv.FormatInt(testNow.Unix(), 10), Sign(testSecret, testNow.Unix(), r.body)
	if r.ts != "" {
		ts = r.ts
	}
	if r.sig != "" {
		sig = r.sig
	}
	if ts != "-" {
		req.Header.Set(HeaderTimestamp, ts)
	}
	if sig != "-" {
		req.Header.Set(HeaderSignature, sig)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), "every answer is JSON: %s", rec.Body)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	return rec, body
}

func newTestHandler(s Starter, replays ReplayStore, logs *bytes.Buffer) http.Handler {
	return NewMux(&Handler{Secret: testSecret, Starter: s, Replays: replays, Now: func() time.Time { return testNow },
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
}

func TestHandler(t *testing.T) {
	body := []byte(terminateBody)
	stale := testNow.Add(-Window - time.Minute).Unix()
	future := testNow.Add(Window + time.Minute).Unix()
	tests := []struct {
		name    string
		req     request
		status  int
		errPart string // a fragment of "error"
		started bool
	}{
		{"good", signed(terminateBody), http.StatusAccepted, "", true},
		{"bad signature", request{method: "POST", path: EventsPath, body: body, sig: Sign([]byte("wrong secret, but 32 bytes long.."), testNow.Unix(), body)},
			http.StatusUnauthorized, "signature does not match", false},
		{"signature of another body", request{method: "POST", path: EventsPath, body: body, sig: Sign(testSecret, testNow.Unix(), []byte("{}"))},
			http.StatusUnauthorized, "signature does not match", false},
		{"missing signature", request{method: "POST", path: EventsPath, body: body, sig: "-"}, http.StatusUnauthorized, "missing X-Provisio-Signature", false},
		{"missing timestamp", request{method: "POST", path: EventsPath, body: body, ts: "-"}, http.StatusUnauthorized, "missing X-Provisio-Timestamp", false},
		{"malformed timestamp", request{method: "POST", path: EventsPath, body: body, ts: "yesterday"}, http.StatusUnauthorized, "must be unix seconds", false},
		{"stale", request{method: "POST", path: EventsPath, body: body, ts: strconv.FormatInt(stale, 10), sig: Sign(testSecret, stale, body)},
			http.StatusUnauthorized, "more than 5 minutes old", false},
		{"future", request{method: "POST", path: EventsPath, body: body, ts: strconv.FormatInt(future, 10), sig: Sign(testSecret, future, body)},
			http.StatusUnauthorized, "more than 5 minutes ahead", false},
		{"malformed JSON", signed(`{"type":"terminate",`), http.StatusBadRequest, "body: malformed JSON", false},
		{"two JSON values", signed(terminateBody + terminateBody), http.StatusBadRequest, "more than one JSON value", false},
		{"unknown field", signed(`{"type":"terminate","employee_id":"E100001","salary":1}`), http.StatusBadRequest, "salary: unknown field", false},
		{"invalid event", signed(`{"type":"terminate","employee_id":"E1"}`), http.StatusBadRequest, "employee_id: must be an employee ID", false},
		{"unknown type", signed(`{"type":"promote","employee_id":"E100001"}`), http.StatusBadRequest, "type: want one of", false},
		{"oversize", signed(`{"type":"terminate","reason":"` + strings.Repeat("x", events.MaxEventBytes) + `"}`), http.StatusRequestEntityTooLarge, "larger than 1048576 bytes", false},
		{"wrong method", request{method: http.MethodGet, path: EventsPath}, http.StatusMethodNotAllowed, "method GET not allowed", false},
		{"wrong path", request{method: http.MethodPost, path: "/v2/events", body: body}, http.StatusNotFound, "not found", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeStarter{shapes: true}
			var logs bytes.Buffer
			rec, got := tt.req.send(t, newTestHandler(s, &memReplays{seen: map[string]time.Time{}}, &logs))
			assert.Equal(t, tt.status, rec.Code, "%v", got)
			if tt.errPart != "" {
				assert.Contains(t, got["error"], tt.errPart)
			}
			assert.Equal(t, tt.started, len(s.got) == 1)
			if tt.started {
				assert.Equal(t, "offboarding-E100001", got["workflowId"])
				assert.Equal(t, "started", got["outcome"])
				assert.Equal(t, []events.Event{{Type: events.TypeTerminate, EmployeeID: "E100001",
					Effective: hr.Date{Time: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}}}, s.got)
			}
			if tt.status == http.StatusMethodNotAllowed {
				assert.Equal(t, "POST", rec.Header().Get("Allow"))
			}
			assert.NotContains(t, logs.String(), string(testSecret), "the secret is never logged")
			assert.NotContains(t, logs.String(), strings.TrimPrefix(Sign(testSecret, testNow.Unix(), tt.req.body), "sha256="), "no signature in the logs")
		})
	}
}

func TestHandlerRefusesReplays(t *testing.T) {
	s := &fakeStarter{}
	h := newTestHandler(s, &memReplays{seen: map[string]time.Time{}}, &bytes.Buffer{})
	rec, _ := signed(terminateBody).send(t, h)
	require.Equal(t, http.StatusAccepted, rec.Code)
	rec, got := signed(terminateBody).send(t, h)
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.Contains(t, got["error"], "replay")
	// The same signature in upper case is the same signature.
	upper := signed(terminateBody)
	upper.sig = "sha256=" + strings.ToUpper(strings.TrimPrefix(Sign(testSecret, testNow.Unix(), upper.body), "sha256="))
	rec, _ = upper.send(t, h)
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	assert.Len(t, s.got, 1, "started once")

	// The same event signed a second later is a new request.
	next := signed(terminateBody)
	next.ts, next.sig = strconv.FormatInt(testNow.Unix()+1, 10), Sign(testSecret, testNow.Unix()+1, next.body)
	rec, _ = next.send(t, h)
	assert.Equal(t, http.StatusAccepted, rec.Code)
}

func TestHandlerServerTrouble(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
	}{
		{"Temporal unavailable", serviceerror.NewUnavailable("connection refused"), http.StatusServiceUnavailable},
		{"timeout", context.DeadlineExceeded, http.StatusServiceUnavailable},
		{"anything else", errors.New("bug"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &fakeStarter{err: tt.err}
			replays := &memReplays{seen: map[string]time.Time{}}
			var logs bytes.Buffer
			h := newTestHandler(s, replays, &logs)
			rec, got := signed(terminateBody).send(t, h)
			assert.Equal(t, tt.status, rec.Code)
			assert.Contains(t, got["error"], "send it again")
			assert.NotContains(t, got["error"], tt.err.Error(), "internal errors stay in the log")
			assert.Contains(t, logs.String(), tt.err.Error())
			// The same request may be sent again: it is not a replay.
			s.err = nil
			rec, _ = signed(terminateBody).send(t, h)
			assert.Equal(t, http.StatusAccepted, rec.Code)
		})
	}

	rec, got := signed(terminateBody).send(t, newTestHandler(&fakeStarter{}, &memReplays{err: errors.New("db down")}, &bytes.Buffer{}))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "no replay check, no start")
	assert.Contains(t, got["error"], "send the event again")
}

func TestHandlerListsInvalidFields(t *testing.T) {
	s := &fakeStarter{shapes: true}
	rec, got := signed(`{"type":"request-access","employee_id":"E100001","entitlement":"vpn","requested_by":"me"}`).
		send(t, newTestHandler(s, &memReplays{seen: map[string]time.Time{}}, &bytes.Buffer{}))
	require.Equal(t, http.StatusBadRequest, rec.Code)
	fields, _ := got["fields"].([]any)
	require.Len(t, fields, 2)
	assert.Equal(t, "entitlement", fields[0].(map[string]any)["field"])
	assert.Equal(t, "requested_by", fields[1].(map[string]any)["field"])
}

func TestServeShutsDownGracefully(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewUnstartedServer(nil)
	ln := srv.Listener
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, newTestHandler(&fakeStarter{}, &memReplays{seen: map[string]time.Time{}}, &bytes.Buffer{}), nil)
	}()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the context ended")
	}
	_, err = http.Get("http://" + ln.Addr().String() + "/healthz")
	assert.Error(t, err, "the listener is closed")
}
