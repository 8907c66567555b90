package scimapp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/elimity-com/scim"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"
)

// DefaultToken is the development bearer token (SCIM_TOKEN's default).
const DefaultToken = "dev-scim-token"

// BasePath is where the SCIM API is served.
const BasePath = "/scim/v2"

// maxBody caps a request body; SCIM bodies of this app are a few kB.
const maxBody = 1 << 20

// maxResults is the largest page the app returns (ServiceProviderConfig
// filter.maxResults); larger counts are cut to it.
const maxResults = 1000

// HandlerOptions configures NewHandler.
type HandlerOptions struct {
	// Store holds the data; required.
	Store *Store
	// Token is the bearer token every SCIM request must carry; required.
	Token string
	// BaseURL is the absolute URL of BasePath (e.g.
	// http://127.0.0.1:8280/scim/v2), used for meta.location and Location
	// headers; relative locations when empty.
	BaseURL string
	// Logger receives request and error logs; slog.Default() when nil.
	Logger *slog.Logger
}

// NewHandler returns the whole app: the "/" page that says this is a
// stand-in, /healthz, and the SCIM API under BasePath behind bearer-token
// authentication.
func NewHandler(opts HandlerOptions) (http.Handler, error) {
	if opts.Store == nil {
		return nil, errors.New("scimapp: a store is required")
	}
	if opts.Token == "" {
		return nil, errors.New("scimapp: a bearer token is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	api, err := newSCIMServer(opts.Store, opts.BaseURL, log)
	if err != nil {
		return nil, err
	}
	protected := requireToken(opts.Token, http.StripPrefix("/scim", api))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", indexPage)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := opts.Store.Ping(r.Context()); err != nil {
			http.Error(w, "database unreachable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle(BasePath+"/", protected)
	mux.Handle(BasePath, protected)
	return logRequests(log, mux), nil
}

// newSCIMServer wires the library: Users with the enterprise extension,
// Groups, and the service provider configuration.
func newSCIMServer(store *Store, baseURL string, log *slog.Logger) (scim.Server, error) {
	userSchema := schema.CoreUserSchema()
	groupSchema := schema.CoreGroupSchema()
	enterprise := schema.ExtensionEnterpriseUser()
	args := &scim.ServerArgs{
		ServiceProviderConfig: &scim.ServiceProviderConfig{
			DocumentationURI: optional.NewString("/"),
			AuthenticationSchemes: []scim.AuthenticationScheme{{
				Type:        scim.AuthenticationTypeOauthBearerToken,
				Name:        "Bearer token",
				Description: "Static bearer token from SCIM_TOKEN (demo only).",
				Primary:     true,
			}},
			MaxResults:       maxResults,
			SupportFiltering: true,
			SupportPatch:     true,
		},
		ResourceTypes: []scim.ResourceType{
			{
				ID:               optional.NewString("User"),
				Name:             "User",
				Endpoint:         "/Users",
				Description:      optional.NewString("User Account"),
				Schema:           userSchema,
				SchemaExtensions: []scim.SchemaExtension{{Schema: enterprise}},
				Handler: userHandler{
					store:   store,
					patcher: patcher{core: withExternalID(userSchema), extensions: []schema.Schema{enterprise}},
					log:     log,
				},
			},
			{
				ID:          optional.NewString("Group"),
				Name:        "Group",
				Endpoint:    "/Groups",
				Description: optional.NewString("Group"),
				Schema:      groupSchema,
				Handler: groupHandler{
					store:   store,
					patcher: patcher{core: withExternalID(groupSchema)},
					log:     log,
				},
			},
		},
	}
	opts := []scim.ServerOption{scim.WithLogger(libraryLogger{log})}
	if baseURL != "" {
		opts = append(opts, scim.WithBaseURL(baseURL))
	}
	s, err := scim.NewServer(args, opts...)
	if err != nil {
		return scim.Server{}, fmt.Errorf("scimapp: build SCIM server: %w", err)
	}
	return s, nil
}

// requireToken lets a request through only with the right bearer token.
// Both sides are hashed first so the comparison takes the same time
// whatever the length or content of the token presented.
func requireToken(token string, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, presented, found := strings.Cut(r.Header.Get("Authorization"), " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(presented)))
		if !found || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="scimdemo"`)
			writeError(w, http.StatusUnauthorized, "missing or invalid bearer token")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		next.ServeHTTP(w, r)
	})
}

// writeError writes a SCIM error response (RFC 7644 §3.12).
func writeError(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/scim+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:Error"},
		"status":  fmt.Sprint(status),
		"detail":  detail,
	})
}

// indexTemplate is the "/" page: it must leave no doubt that this is a
// stand-in and not a product.
var indexTemplate = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>scimdemo — stand-in SaaS application</title></head>
<body style="font-family: sans-serif; max-width: 46em; margin: 2em auto">
<h1>scimdemo: a stand-in for a SaaS application</h1>
<p><strong>This is a demo.</strong> It pretends to be a SaaS product so that provisio's
SCIM connector has something real to provision. It is not a product, not a
reference SCIM server, and must not hold real people's data.</p>
<ul>
<li>SCIM 2.0 API: <code>{{.Base}}</code> (Users with the enterprise extension, Groups)</li>
<li>Authentication: <code>Authorization: Bearer &lt;SCIM_TOKEN&gt;</code></li>
<li>Discovery: <code>{{.Base}}/ServiceProviderConfig</code>, <code>{{.Base}}/Schemas</code>, <code>{{.Base}}/ResourceTypes</code></li>
<li>Login rule (SCIM defines none): a user may log in while <code>active</code> is true.</li>
</ul>
<p>Protocol handling by <a href="https://github.com/elimity-com/scim">github.com/elimity-com/scim</a>; data in PostgreSQL.</p>
</body></html>
`))

func indexPage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = indexTemplate.Execute(w, struct{ Base string }{BasePath})
}

// statusRecorder remembers the status a handler wrote, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// logRequests logs method, path (never the query, which can hold names,
// nor headers, which hold the token), status and duration.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", rec.status), slog.Duration("took", time.Since(start)))
	})
}

// libraryLogger adapts slog to the library's Logger, which is called as
// Error(message, key, value, ...).
type libraryLogger struct{ log *slog.Logger }

// Error logs one library error.
func (l libraryLogger) Error(args ...any) {
	if len(args) == 0 {
		return
	}
	msg, ok := args[0].(string)
	if !ok {
		l.log.Error("scim library", "detail", fmt.Sprint(args...))
		return
	}
	l.log.Error("scim library: "+msg, args[1:]...)
}
