package scimapp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/internal/scimapp"
	"github.com/provisio-dev/provisio/internal/scimapp/scimapptest"
)

// call sends one SCIM request and decodes the JSON answer, if any.
func call(t *testing.T, srv *scimapptest.Server, token, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
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

func TestAuthIsRequired(t *testing.T) {
	srv := scimapptest.Start(t, scimapptest.Options{})
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "nope", http.StatusUnauthorized},
		{"prefix of the token", srv.Token[:len(srv.Token)-1], http.StatusUnauthorized},
		{"right token", srv.Token, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, srv, tc.token, http.MethodGet, "/Users", nil)
			assert.Equal(t, tc.want, status)
			if tc.want == http.StatusUnauthorized {
				assert.NotContains(t, body["detail"], srv.Token)
			}
		})
	}
}

func TestSeedsGroups(t *testing.T) {
	srv := scimapptest.Start(t, scimapptest.Options{})
	status, body := call(t, srv, srv.Token, http.MethodGet, "/Groups", nil)
	require.Equal(t, http.StatusOK, status)
	var names []string
	for _, r := range body["Resources"].([]any) {
		names = append(names, r.(map[string]any)["displayName"].(string))
	}
	assert.ElementsMatch(t, scimapp.SeedGroups(), names)
}

func TestIndexPageSaysStandIn(t *testing.T) {
	srv := scimapptest.Start(t, scimapptest.Options{})
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	resp, err := http.Get(u.Scheme + "://" + u.Host + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(b), "stand-in for a SaaS application")
}

func TestUserLifecycle(t *testing.T) {
	srv := scimapptest.Start(t, scimapptest.Options{})
	user := map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
		"userName":    `we"ird\name`,
		"name":        map[string]any{"givenName": "Ada", "familyName": "Lovelace"},
		"displayName": "Ada Lovelace",
		"emails":      []any{map[string]any{"value": "ada@example.com", "type": "work", "primary": true}},
		"active":      true,
		"password":    "never-stored",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"employeeNumber": "E1"},
	}
	status, created := call(t, srv, srv.Token, http.MethodPost, "/Users", user)
	require.Equal(t, http.StatusCreated, status, "%v", created)
	id := created["id"].(string)
	assert.NotContains(t, created, "password")
	assert.Equal(t, []any{}, created["groups"])

	status, _ = call(t, srv, srv.Token, http.MethodPost, "/Users", map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": `WE"IRD\NAME`,
	})
	assert.Equal(t, http.StatusConflict, status, "userName is unique ignoring case")

	// The filter value arrives JSON-escaped and must still match exactly this user.
	filter := url.QueryEscape(`userName eq "we\"ird\\name"`)
	status, list := call(t, srv, srv.Token, http.MethodGet, "/Users?filter="+filter, nil)
	require.Equal(t, http.StatusOK, status, "%v", list)
	require.EqualValues(t, 1, list["totalResults"])

	// A filter outside the SQL fast paths goes through the library's matcher.
	filter = url.QueryEscape(`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "E1"`)
	status, list = call(t, srv, srv.Token, http.MethodGet, "/Users?filter="+filter, nil)
	require.Equal(t, http.StatusOK, status, "%v", list)
	assert.EqualValues(t, 1, list["totalResults"])

	ok, err := srv.Store.CanLogin(context.Background(), `we"ird\name`)
	require.NoError(t, err)
	assert.True(t, ok)

	status, patched := call(t, srv, srv.Token, http.MethodPatch, "/Users/"+id, map[string]any{
		"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{
			map[string]any{"op": "Replace", "path": "active", "value": false},
			map[string]any{"op": "replace", "path": "name.familyName", "value": "King"},
			map[string]any{"op": "replace", "path": `emails[type eq "work"].value`, "value": "ada.king@example.com"},
			map[string]any{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "E2"},
		},
	})
	require.Equal(t, http.StatusOK, status, "%v", patched)
	assert.Equal(t, false, patched["active"])
	assert.Equal(t, "King", patched["name"].(map[string]any)["familyName"])
	assert.Equal(t, "ada.king@example.com", patched["emails"].([]any)[0].(map[string]any)["value"])
	assert.Equal(t, "E2", patched["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].(map[string]any)["employeeNumber"])
	ok, err = srv.Store.CanLogin(context.Background(), `we"ird\name`)
	require.NoError(t, err)
	assert.False(t, ok, "an inactive user cannot log in")

	status, _ = call(t, srv, srv.Token, http.MethodPatch, "/Users/"+id, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "add", "path": "groups", "value": []any{map[string]any{"value": "x"}}}},
	})
	assert.Equal(t, http.StatusBadRequest, status, "groups is read-only on a user")

	status, _ = call(t, srv, srv.Token, http.MethodPost, "/Users", map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "nul\x00byte",
	})
	assert.Equal(t, http.StatusBadRequest, status, "NUL is refused as invalid, not a 500")

	status, _ = call(t, srv, srv.Token, http.MethodDelete, "/Users/"+id, nil)
	assert.Equal(t, http.StatusNoContent, status)
	status, _ = call(t, srv, srv.Token, http.MethodDelete, "/Users/"+id, nil)
	assert.Equal(t, http.StatusNotFound, status)
	status, _ = call(t, srv, srv.Token, http.MethodGet, "/Users/not-a-uuid", nil)
	assert.Equal(t, http.StatusNotFound, status)
}

func TestGroupMembershipPatch(t *testing.T) {
	srv := scimapptest.Start(t, scimapptest.Options{})
	var ids []string
	for _, n := range []string{"alice", "bob"} {
		status, u := call(t, srv, srv.Token, http.MethodPost, "/Users", map[string]any{
			"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": n,
		})
		require.Equal(t, http.StatusCreated, status)
		ids = append(ids, u["id"].(string))
	}
	status, list := call(t, srv, srv.Token, http.MethodGet, "/Groups?filter="+url.QueryEscape(`displayName eq "Engineering"`), nil)
	require.Equal(t, http.StatusOK, status)
	require.EqualValues(t, 1, list["totalResults"], "displayName matches ignoring case")
	gid := list["Resources"].([]any)[0].(map[string]any)["id"].(string)

	patch := func(op map[string]any) int {
		status, body := call(t, srv, srv.Token, http.MethodPatch, "/Groups/"+gid, map[string]any{
			"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": []any{op},
		})
		require.Less(t, status, 300, "%v", body)
		return status
	}
	members := func() []string {
		_, g := call(t, srv, srv.Token, http.MethodGet, "/Groups/"+gid, nil)
		var out []string
		ms, _ := g["members"].([]any)
		for _, m := range ms {
			out = append(out, m.(map[string]any)["value"].(string))
		}
		slices.Sort(out)
		return out
	}
	for _, id := range ids {
		patch(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": id}}})
	}
	patch(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": ids[0]}}})
	want := slices.Clone(ids)
	slices.Sort(want)
	assert.Equal(t, want, members(), "adding a present member changes nothing")

	patch(map[string]any{"op": "remove", "path": `members[value eq "` + ids[0] + `"]`})
	assert.Equal(t, []string{ids[1]}, members(), "remove takes out exactly one member")
	patch(map[string]any{"op": "remove", "path": `members[value eq "` + ids[0] + `"]`})

	// The user's groups attribute and the members filter both report it.
	_, u := call(t, srv, srv.Token, http.MethodGet, "/Users/"+ids[1], nil)
	assert.Equal(t, "engineering", u["groups"].([]any)[0].(map[string]any)["display"])
	_, list = call(t, srv, srv.Token, http.MethodGet, "/Groups?filter="+url.QueryEscape(`members[value eq "`+ids[1]+`"]`), nil)
	assert.EqualValues(t, 1, list["totalResults"])

	status, body := call(t, srv, srv.Token, http.MethodPatch, "/Groups/"+gid, map[string]any{
		"schemas":    []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": "00000000-0000-0000-0000-000000000000"}}}},
	})
	assert.Equal(t, http.StatusBadRequest, status, "%v", body)
	assert.True(t, strings.Contains(body["detail"].(string), "not a user"))

	// Deleting a user removes its memberships.
	status, _ = call(t, srv, srv.Token, http.MethodDelete, "/Users/"+ids[1], nil)
	require.Equal(t, http.StatusNoContent, status)
	assert.Empty(t, members())
}

func TestRestartKeepsDataAndDoesNotReseed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := scimapptest.Start(t, scimapptest.Options{})
	status, _ := call(t, srv, srv.Token, http.MethodPost, "/Users", map[string]any{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"}, "userName": "survivor",
	})
	require.Equal(t, http.StatusCreated, status)
	_, list := call(t, srv, srv.Token, http.MethodGet, "/Groups?filter="+url.QueryEscape(`displayName eq "sales"`), nil)
	id := list["Resources"].([]any)[0].(map[string]any)["id"].(string)
	status, _ = call(t, srv, srv.Token, http.MethodDelete, "/Groups/"+id, nil)
	require.Equal(t, http.StatusNoContent, status)

	// A restart opens the same data: the user is there, and the group an
	// operator deleted is not seeded again.
	again, err := scimapp.Open(ctx, srv.StoreOptions)
	require.NoError(t, err)
	defer again.Close()
	ok, err := again.CanLogin(ctx, "survivor")
	require.NoError(t, err)
	assert.True(t, ok)
	_, body := call(t, srv, srv.Token, http.MethodGet, "/Groups", nil)
	assert.EqualValues(t, len(scimapp.SeedGroups())-1, body["totalResults"])
}
