package scim

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
)

func isUsersList(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/Users")
}

func TestRetryAfterIsHonouredWithinTheCall(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		after   func() string
		minWait time.Duration
	}{
		{"429 with seconds", http.StatusTooManyRequests, func() string { return "1" }, 900 * time.Millisecond},
		{"429 with an HTTP date", http.StatusTooManyRequests, func() string {
			return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat)
		}, 0},
		{"503 with zero seconds", http.StatusServiceUnavailable, func() string { return "0" }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fault{Status: tc.status, Times: 1, Match: isUsersList, Header: map[string]string{"Retry-After": tc.after()}}
			rec := &recorder{}
			srv := startServer(t, func(h http.Handler) http.Handler { return rec.wrap(f.wrap(h)) })
			c := newClient(t, srv, func(cfg *Config) { cfg.MaxRetryAfter = 5 * time.Second })

			start := time.Now()
			_, err := c.ListAccounts(testCtx(t), connectors.ListAccountsRequest{})
			require.NoError(t, err, "one 429/503 with a short Retry-After is absorbed inside the call")
			assert.GreaterOrEqual(t, time.Since(start), tc.minWait)
			assert.Len(t, rec.requests(http.MethodGet), 2, "exactly one retry")
		})
	}
}

func TestRetryAfterBeyondTheLimitIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after string
		limit time.Duration
	}{
		{"wait longer than MaxRetryAfter", "120", time.Second},
		{"waiting disabled", "1", -1},
		{"no Retry-After at all", "", time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fault{Status: http.StatusTooManyRequests, Match: isUsersList, Header: map[string]string{"Retry-After": tc.after}}
			srv := startServer(t, f.wrap)
			c := newClient(t, srv, func(cfg *Config) { cfg.MaxRetryAfter = tc.limit })
			start := time.Now()
			_, err := c.ListAccounts(testCtx(t), connectors.ListAccountsRequest{})
			require.Error(t, err)
			assert.Less(t, time.Since(start), 500*time.Millisecond, "no waiting")
			assert.Equal(t, connectors.KindUnavailable, connectors.KindOf(err), "%v", err)
			assert.True(t, connectors.KindOf(err).Retryable(), "left to the workflow engine to retry")
			if tc.after == "120" {
				assert.Contains(t, err.Error(), "retry after 2m0s")
			}
		})
	}
}

func TestHTTPStatusKinds(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   connectors.ErrorKind
	}{
		{http.StatusBadRequest, connectors.KindInvalid},
		{http.StatusUnauthorized, connectors.KindPermission},
		{http.StatusForbidden, connectors.KindPermission},
		{http.StatusNotFound, connectors.KindNotFound},
		{http.StatusRequestTimeout, connectors.KindTimeout},
		{http.StatusConflict, connectors.KindConflict},
		{http.StatusPreconditionFailed, connectors.KindConflict},
		{http.StatusInternalServerError, connectors.KindUnavailable},
		{http.StatusNotImplemented, connectors.KindInvalid},
		{http.StatusBadGateway, connectors.KindUnavailable},
		{http.StatusServiceUnavailable, connectors.KindUnavailable},
		{http.StatusGatewayTimeout, connectors.KindUnavailable},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv := startServer(t, (&fault{Status: tc.status}).wrap)
			c := newClient(t, srv, nil)
			_, err := c.GetAccount(testCtx(t), connectors.AccountRequest{Username: "someone"})
			require.Error(t, err)
			assert.Equal(t, tc.want, connectors.KindOf(err), "%v", err)
			assert.Contains(t, err.Error(), "injected", "the server's SCIM detail is in the message")
		})
	}
}

func TestServerErrorsAreRetryable(t *testing.T) {
	// A 500 while granting must be retried by the workflow engine: the
	// grant did not happen.
	srv := startServer(t, (&fault{Status: http.StatusInternalServerError, Match: func(r *http.Request) bool {
		return r.Method == http.MethodPatch
	}}).wrap)
	c := newClient(t, srv, nil)
	ctx := testCtx(t)
	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: connectors.Account{Username: "ret", EmployeeID: "E1"}})
	require.NoError(t, err)
	_, err = c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: "ret", Entitlement: "sales"})
	require.Error(t, err)
	assert.True(t, connectors.KindOf(err).Retryable(), "%v", err)

	// No server at all is retryable too.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	dead, err := New(Config{BaseURL: "http://" + addr + "/scim/v2", Token: "t0k3n-value"})
	require.NoError(t, err)
	_, err = dead.GetAccount(ctx, connectors.AccountRequest{Username: "x"})
	require.Error(t, err)
	assert.Equal(t, connectors.KindUnavailable, connectors.KindOf(err), "%v", err)
	assert.NotContains(t, err.Error(), "t0k3n-value")
}

func TestWrongTokenIsPermissionAndNeverLeaks(t *testing.T) {
	srv := startServer(t, nil)
	const wrong = "wrong-token-Zq8xV3"
	c := newClient(t, srv, func(cfg *Config) { cfg.Token = wrong })
	ctx := testCtx(t)
	_, err := c.GetAccount(ctx, connectors.AccountRequest{Username: "anyone"})
	require.Error(t, err)
	assert.Equal(t, connectors.KindPermission, connectors.KindOf(err), "%v", err)
	_, err = c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: connectors.Account{Username: "anyone", EmployeeID: "E1"}})
	require.Error(t, err)
	assert.Equal(t, connectors.KindPermission, connectors.KindOf(err), "%v", err)
	for _, secret := range []string{wrong, srv.Token, "Bearer", "Authorization"} {
		assert.NotContains(t, err.Error(), secret)
	}
}

func TestEchoedTokenIsRedacted(t *testing.T) {
	// A server that quotes the request's Authorization header in its error
	// detail must not make the token appear in ours.
	srv := startServer(t, (&fault{Status: http.StatusBadRequest, Detail: func(r *http.Request) string {
		return "bad request; you sent Authorization: " + r.Header.Get("Authorization")
	}}).wrap)
	c := newClient(t, srv, nil)
	_, err := c.GetAccount(testCtx(t), connectors.AccountRequest{Username: "x"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), srv.Token)
	assert.Contains(t, err.Error(), "[REDACTED]")
	assert.Equal(t, connectors.KindInvalid, connectors.KindOf(err))
}

func TestTimeouts(t *testing.T) {
	srv := startServer(t, (&fault{Status: http.StatusOK, Delay: 5 * time.Second}).wrap)
	t.Run("client timeout", func(t *testing.T) {
		c := newClient(t, srv, func(cfg *Config) { cfg.HTTPClient = &http.Client{Timeout: 200 * time.Millisecond} })
		_, err := c.GetAccount(testCtx(t), connectors.AccountRequest{Username: "slow"})
		require.Error(t, err)
		assert.Equal(t, connectors.KindTimeout, connectors.KindOf(err), "%v", err)
	})
	t.Run("context deadline", func(t *testing.T) {
		c := newClient(t, srv, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := c.GetAccount(ctx, connectors.AccountRequest{Username: "slow"})
		require.Error(t, err)
		assert.Equal(t, connectors.KindTimeout, connectors.KindOf(err), "%v", err)
	})
}
