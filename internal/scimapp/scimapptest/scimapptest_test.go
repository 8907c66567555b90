package scimapptest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/scimapp/scimapptest"
)

const (
	schemaUser    = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaPatchOp = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

// send makes one SCIM request and decodes the JSON answer, if any.
func send(t *testing.T, srv *scimapptest.Server, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+srv.Token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out), "body: %s", raw)
	}
	return resp.StatusCode, out
}

// createUser creates an active user and returns its id.
func createUser(t *testing.T, srv *scimapptest.Server, name string, active bool) string {
	t.Helper()
	status, body := send(t, srv, http.MethodPost, "/Users", map[string]any{
		"schemas": []string{schemaUser}, "userName": name, "active": active,
	})
	require.Equal(t, http.StatusCreated, status, "%v", body)
	return body["id"].(string)
}

func canLogin(t *testing.T, srv *scimapptest.Server, name string) bool {
	t.Helper()
	ok, err := srv.Store.CanLogin(context.Background(), name)
	require.NoError(t, err)
	return ok
}

func patchOf(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{schemaPatchOp}, "Operations": ops}
}

// deactivations are the ways clients set active to false.
var deactivations = []struct {
	name   string
	method string
	body   func(name string) any
	// displayName, when set, is another change in the same request that
	// must still be applied.
	displayName string
}{
	{name: "PATCH replace path active", method: http.MethodPatch, body: func(string) any {
		return patchOf(map[string]any{"op": "replace", "path": "active", "value": false})
	}},
	{name: "PATCH title-case op, as Azure AD sends", method: http.MethodPatch, body: func(string) any {
		return patchOf(map[string]any{"op": "Replace", "path": "active", "value": false})
	}},
	{name: "PATCH add with the fully qualified path", method: http.MethodPatch, body: func(string) any {
		return patchOf(map[string]any{"op": "ADD", "path": schemaUser + ":active", "value": false})
	}},
	{name: "PATCH with the boolean as a string", method: http.MethodPatch, body: func(string) any {
		return patchOf(map[string]any{"op": "replace", "path": "Active", "value": "False"})
	}},
	{name: "PATCH without path", method: http.MethodPatch, body: func(string) any {
		return patchOf(map[string]any{"op": "replace", "value": map[string]any{"active": false}})
	}},
	{name: "PATCH without path, with another change", method: http.MethodPatch, displayName: "Renamed", body: func(string) any {
		return patchOf(map[string]any{"op": "replace", "value": map[string]any{"active": false, "displayName": "Renamed"}})
	}},
	{name: "PATCH with a second operation", method: http.MethodPatch, displayName: "Second", body: func(string) any {
		return patchOf(
			map[string]any{"op": "replace", "path": "active", "value": false},
			map[string]any{"op": "replace", "path": "displayName", "value": "Second"},
		)
	}},
	{name: "PUT", method: http.MethodPut, displayName: "Put", body: func(name string) any {
		return map[string]any{"schemas": []string{schemaUser}, "userName": name, "active": false, "displayName": "Put"}
	}},
}

func TestIgnoreDeactivate(t *testing.T) {
	srv := scimapptest.Start(t, scimapptest.Options{IgnoreDeactivate: true})
	for i, tc := range deactivations {
		t.Run(tc.name, func(t *testing.T) {
			name := "ignored" + string(rune('a'+i))
			id := createUser(t, srv, name, true)
			status, body := send(t, srv, tc.method, "/Users/"+id, tc.body(name))
			require.Equal(t, http.StatusOK, status, "the deactivation is answered as a success: %v", body)
			assert.Equal(t, true, body["active"], "the answer shows the user still active")
			assert.True(t, canLogin(t, srv, name), "the user stays active")
			if tc.displayName != "" {
				assert.Equal(t, tc.displayName, body["displayName"], "other changes in the request are applied")
			}
		})
	}

	t.Run("enabling still works", func(t *testing.T) {
		id := createUser(t, srv, "bornDisabled", false)
		require.False(t, canLogin(t, srv, "bornDisabled"))
		status, _ := send(t, srv, http.MethodPatch, "/Users/"+id,
			patchOf(map[string]any{"op": "replace", "path": "active", "value": true}))
		require.Equal(t, http.StatusOK, status)
		assert.True(t, canLogin(t, srv, "bornDisabled"))
	})

	t.Run("a missing user is still 404", func(t *testing.T) {
		status, _ := send(t, srv, http.MethodPatch, "/Users/00000000-0000-0000-0000-000000000000",
			patchOf(map[string]any{"op": "replace", "path": "active", "value": false}))
		assert.Equal(t, http.StatusNotFound, status)
	})
}

// TestWithoutIgnoreDeactivate is the control: the same requests do
// disable on the app as it is.
func TestWithoutIgnoreDeactivate(t *testing.T) {
	srv := scimapptest.Start(t, scimapptest.Options{})
	for i, tc := range deactivations {
		if tc.name == "PATCH with the boolean as a string" {
			continue // the app itself wants a JSON boolean
		}
		t.Run(tc.name, func(t *testing.T) {
			name := "honoured" + string(rune('a'+i))
			id := createUser(t, srv, name, true)
			status, body := send(t, srv, tc.method, "/Users/"+id, tc.body(name))
			require.Equal(t, http.StatusOK, status, "%v", body)
			assert.False(t, canLogin(t, srv, name))
		})
	}
}

// TestIgnoreDeactivateComposesWithWrap: Wrap sits in front and sees the
// request as the client sent it.
func TestIgnoreDeactivateComposesWithWrap(t *testing.T) {
	var mu sync.Mutex
	var seen [][]byte
	srv := scimapptest.Start(t, scimapptest.Options{IgnoreDeactivate: true, Wrap: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPatch {
				b, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(b))
				mu.Lock()
				seen = append(seen, b)
				mu.Unlock()
			}
			next.ServeHTTP(w, r)
		})
	}})
	id := createUser(t, srv, "wrapped", true)
	status, _ := send(t, srv, http.MethodPatch, "/Users/"+id,
		patchOf(map[string]any{"op": "replace", "path": "active", "value": false}))
	require.Equal(t, http.StatusOK, status)
	assert.True(t, canLogin(t, srv, "wrapped"))
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 1)
	assert.Contains(t, string(seen[0]), `"value":false`, "the wrapper saw the deactivation the client sent")
}
