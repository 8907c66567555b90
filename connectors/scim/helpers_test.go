package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors/conformance"
	"github.com/provisio-dev/provisio/internal/scimapp/scimapptest"
)

// startServer runs the real demo SCIM app (elimity-com/scim plus the
// scimapp handlers and PostgreSQL store) with an optional wrapper in front.
func startServer(t *testing.T, wrap func(http.Handler) http.Handler) *scimapptest.Server {
	t.Helper()
	return scimapptest.Start(t, scimapptest.Options{Wrap: wrap})
}

// newClient builds a connector for srv; mod adjusts the config.
func newClient(t *testing.T, srv *scimapptest.Server, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{Name: "scimdemo", BaseURL: srv.URL, Token: srv.Token, HTTPClient: &http.Client{Timeout: 10 * time.Second}}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// login is the app's login rule read from its store: SCIM has no login of
// its own, so "can log in" means "exists and is active".
func login(srv *scimapptest.Server) func(ctx context.Context, username string) error {
	return func(ctx context.Context, username string) error {
		ok, err := srv.Store.CanLogin(ctx, username)
		if err != nil {
			return err
		}
		if !ok {
			return conformance.ErrLoginFailed
		}
		return nil
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// recorded is one request as the server received it.
type recorded struct {
	Method, Path string
	Filter       string
	Query        url.Values
	Body         []byte
}

// recorder keeps every request passing through it.
type recorder struct {
	mu   sync.Mutex
	reqs []recorded
}

func (rc *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, recorded{Method: r.Method, Path: r.URL.Path, Filter: r.URL.Query().Get("filter"), Query: r.URL.Query(), Body: body})
		rc.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (rc *recorder) reset() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.reqs = nil
}

func (rc *recorder) requests(method string) []recorded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []recorded
	for _, r := range rc.reqs {
		if method == "" || r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

// fault answers the next Times requests for which Match is true (all when
// nil) with Status, Header and a SCIM error body, then lets requests
// through to the real server.
type fault struct {
	Status int
	Header map[string]string
	Detail func(r *http.Request) string
	Match  func(r *http.Request) bool
	Times  int32 // 0 means every matching request
	Delay  time.Duration

	hits atomic.Int32
}

func (f *fault) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.Match != nil && !f.Match(r) {
			next.ServeHTTP(w, r)
			return
		}
		if n := f.hits.Add(1); f.Times > 0 && n > f.Times {
			next.ServeHTTP(w, r)
			return
		}
		if f.Delay > 0 {
			select {
			case <-time.After(f.Delay):
			case <-r.Context().Done():
				return
			}
		}
		for k, v := range f.Header {
			w.Header().Set(k, v)
		}
		detail := "injected " + strconv.Itoa(f.Status)
		if f.Detail != nil {
			detail = f.Detail(r)
		}
		w.Header().Set("Content-Type", mediaType)
		w.WriteHeader(f.Status)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:Error"},
			"status":  strconv.Itoa(f.Status),
			"detail":  detail,
		})
	})
}

// dialect makes the real server speak like the sloppier SCIM services:
// booleans as strings, no totalResults or itemsPerPage, Users without the
// "groups" attribute, and it passes PATCH ops on in title case
// ("Replace"), as Azure AD sends them, to show the server side copes too.
func dialect(next http.Handler) http.Handler {
	sloppyResponses := editResponses(func(doc any) {
		if m, ok := doc.(map[string]any); ok {
			delete(m, "totalResults")
			delete(m, "itemsPerPage")
		}
		sloppy(doc)
	})(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPatch {
			body, _ := io.ReadAll(r.Body)
			for _, op := range []string{"add", "remove", "replace"} {
				body = bytes.ReplaceAll(body, []byte(`"op":"`+op+`"`), []byte(`"op":"`+string(op[0]-32)+op[1:]+`"`))
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		sloppyResponses.ServeHTTP(w, r)
	})
}

func sloppy(v any) {
	switch v := v.(type) {
	case map[string]any:
		if _, isUser := v["userName"]; isUser {
			delete(v, "groups")
		}
		for k, e := range v {
			switch b := e.(type) {
			case bool:
				if b {
					v[k] = "True"
				} else {
					v[k] = "False"
				}
			default:
				sloppy(e)
			}
		}
	case []any:
		for _, e := range v {
			sloppy(e)
		}
	}
}

// assertStandardRequests checks that every write the connector sent is
// plain RFC 7644, whatever dialect the server answered in: PATCH bodies
// carry exactly the PatchOp schema and lower-case ops, and "active" is
// always a JSON boolean, never a string.
func assertStandardRequests(t *testing.T, rc *recorder) {
	t.Helper()
	for _, r := range rc.requests("") {
		switch r.Method {
		case http.MethodPatch:
			var body struct {
				Schemas    []string
				Operations []struct {
					Op    string
					Path  string
					Value json.RawMessage
				}
			}
			require.NoError(t, json.Unmarshal(r.Body, &body), "%s", r.Body)
			assert.Equal(t, []string{schemaPatchOp}, body.Schemas, "PATCH %s: the PatchOp schema alone", r.Path)
			require.NotEmpty(t, body.Operations, "PATCH %s", r.Path)
			for _, op := range body.Operations {
				assert.Contains(t, []string{"add", "remove", "replace"}, op.Op, "PATCH %s: ops are lower case", r.Path)
				if op.Path == "active" {
					assert.Contains(t, []string{"true", "false"}, string(op.Value), "PATCH %s: active is a JSON boolean", r.Path)
				}
			}
		case http.MethodPost:
			var body map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(r.Body, &body), "%s", r.Body)
			if v, ok := body["active"]; ok {
				assert.Contains(t, []string{"true", "false"}, string(v), "POST %s: active is a JSON boolean", r.Path)
			}
		}
	}
}

// since returns the requests recorded after the first n.
func (rc *recorder) since(n int) []recorded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]recorded(nil), rc.reqs[min(n, len(rc.reqs)):]...)
}

// count returns how many requests were recorded.
func (rc *recorder) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}

// editResponses rewrites every JSON response body of the real server with
// edit, to play a server that answers differently.
func editResponses(edit func(doc any)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			var doc any
			if len(body) > 0 && json.Unmarshal(body, &doc) == nil {
				edit(doc)
				body, _ = json.Marshal(doc)
			}
			for k, v := range rec.Header() {
				if k != "Content-Length" {
					w.Header()[k] = v
				}
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body)
		})
	}
}

// eachUser calls f on every User resource in a response document: the
// document itself or the Resources of a list.
func eachUser(doc any, f func(u map[string]any)) {
	m, ok := doc.(map[string]any)
	if !ok {
		return
	}
	if _, isUser := m["userName"]; isUser {
		f(m)
	}
	if list, ok := m["Resources"].([]any); ok {
		for _, e := range list {
			eachUser(e, f)
		}
	}
}

// staleSearch plays a search index that lags behind writes, as large SaaS
// directories do: once frozen, a filtered GET /Users answers what it
// answered before the freeze, while reads by id stay live.
type staleSearch struct {
	mu     sync.Mutex
	frozen bool
	cache  map[string]*httptest.ResponseRecorder
}

func (s *staleSearch) freeze() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frozen = true
}

func (s *staleSearch) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/Users") || r.URL.Query().Get("filter") == "" {
			next.ServeHTTP(w, r)
			return
		}
		key := r.URL.RawQuery
		s.mu.Lock()
		cached, frozen := s.cache[key], s.frozen
		s.mu.Unlock()
		if !frozen || cached == nil {
			cached = httptest.NewRecorder()
			next.ServeHTTP(cached, r)
			s.mu.Lock()
			if s.cache == nil {
				s.cache = map[string]*httptest.ResponseRecorder{}
			}
			if !s.frozen {
				s.cache[key] = cached
			}
			s.mu.Unlock()
		}
		for k, v := range cached.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(cached.Code)
		_, _ = w.Write(cached.Body.Bytes())
	})
}
