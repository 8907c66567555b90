package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.temporal.io/api/serviceerror"

	"github.com/provisio-dev/provisio/internal/events"
)

// EventsPath is where HR posts events.
const EventsPath = "/v1/events"

// replayMargin keeps a signature a little longer than its timestamp can
// pass Verify, for clocks that differ between instances and the database.
const replayMargin = time.Minute

// DefaultStartTimeout bounds how long one event may take to start.
const DefaultStartTimeout = 30 * time.Second

// Starter starts the workflow of an event; *events.Starter is one.
type Starter interface {
	Start(ctx context.Context, e events.Event) (events.Receipt, error)
}

// Handler serves POST /v1/events.
type Handler struct {
	// Secret is the shared HMAC key (PROVISIO_WEBHOOK_SECRET).
	Secret  []byte
	Starter Starter
	Replays ReplayStore
	// Logger gets one line per request; never the secret or a signature.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// StartTimeout bounds Starter.Start; zero means DefaultStartTimeout.
	StartTimeout time.Duration
}

// ErrorBody is the JSON of every refusal.
type ErrorBody struct {
	Error string `json:"error"`
	// Fields lists each field of an invalid event and what is wrong.
	Fields []FieldProblem `json:"fields,omitempty"`
}

// FieldProblem is one wrong field of an event.
type FieldProblem struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// NewMux routes the webhook's paths: POST /v1/events to h and GET /healthz
// for load balancers; everything else is a JSON 404.
func NewMux(h *Handler) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(EventsPath, h)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, ErrorBody{Error: "not found: POST events to " + EventsPath})
	})
	return mux
}

// ServeHTTP authenticates the request, refuses replays, decodes the event
// and starts it. Nothing is decoded before the signature is checked.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	began := h.now()
	log := h.logger().With("remote", r.RemoteAddr)
	reply := func(status int, v any, attrs ...any) {
		writeJSON(w, status, v)
		attrs = append(attrs, "status", status, "took", time.Since(began).Round(time.Millisecond))
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		log.Log(r.Context(), level, "webhook request", attrs...)
	}
	refuse := func(status int, msg string, attrs ...any) {
		reply(status, ErrorBody{Error: msg}, append(attrs, "error", msg)...)
	}

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: POST events to "+EventsPath)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, events.MaxEventBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		refuse(http.StatusRequestEntityTooLarge, "body: "+events.ErrTooLarge.Reason)
		return
	case err != nil:
		refuse(http.StatusBadRequest, "cannot read the body: "+err.Error())
		return
	}
	signature := r.Header.Get(HeaderSignature)
	ts, err := Verify(h.Secret, r.Header.Get(HeaderTimestamp), signature, body, h.now())
	if err != nil {
		refuse(http.StatusUnauthorized, err.Error())
		return
	}
	key := replayKey(signature)
	fresh, err := h.Replays.Remember(r.Context(), key, ts.Add(Window+replayMargin))
	switch {
	case err != nil:
		log.Error("replay store", "error", err)
		refuse(http.StatusServiceUnavailable, "temporary trouble on the server; send the event again")
		return
	case !fresh:
		refuse(http.StatusUnauthorized, "replay: a request with this signature was already received; a new request needs a new timestamp and signature")
		return
	}

	ev, err := events.Decode(bytes.NewReader(body))
	if err != nil {
		reply(http.StatusBadRequest, invalidBody(err), "error", err.Error())
		return
	}
	attrs := []any{"type", ev.Type, "employee", ev.Subject()}
	timeout := h.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	receipt, err := h.Starter.Start(ctx, ev)
	switch {
	case events.IsInvalid(err):
		reply(http.StatusBadRequest, invalidBody(err), append(attrs, "error", err.Error())...)
		return
	case err != nil:
		// Nothing is known to have started: let the same request be sent
		// again. Starting is idempotent, so a retry after a start that did
		// happen only finds the run.
		if ferr := h.Replays.Forget(context.WithoutCancel(r.Context()), key); ferr != nil {
			log.Error("replay store", "error", ferr)
		}
		status := http.StatusInternalServerError
		if temporary(err) {
			status = http.StatusServiceUnavailable
		}
		log.Error("start event", append(attrs, "error", err)...)
		refuse(status, "trouble on the server, the event may not have started; send it again (it is idempotent)", attrs...)
		return
	}
	reply(http.StatusAccepted, receipt, append(attrs, "workflow", receipt.WorkflowID, "outcome", receipt.Outcome)...)
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// invalidBody lists the fields of an invalid event.
func invalidBody(err error) ErrorBody {
	b := ErrorBody{Error: err.Error()}
	var ie *events.InvalidError
	if errors.As(err, &ie) {
		for _, f := range ie.Fields() {
			b.Fields = append(b.Fields, FieldProblem{Field: f.Field, Reason: f.Reason})
		}
	}
	return b
}

// temporary tells trouble that may pass (a dependency down or slow) from
// anything else.
func temporary(err error) bool {
	var unavailable *serviceerror.Unavailable
	var exhausted *serviceerror.ResourceExhausted
	var deadline *serviceerror.DeadlineExceeded
	var connect *pgconn.ConnectError
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &unavailable) || errors.As(err, &exhausted) ||
		errors.As(err, &deadline) || errors.As(err, &connect) || errors.As(err, &netErr)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
