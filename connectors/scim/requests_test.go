package scim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
)

func TestFilterValuesAreEscaped(t *testing.T) {
	rec := &recorder{}
	srv := startServer(t, rec.wrap)
	c := newClient(t, srv, nil)
	ctx := testCtx(t)
	// A decoy whose name is what a broken escaper would search for.
	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: connectors.Account{Username: "q", EmployeeID: "E0"}})
	require.NoError(t, err)

	for _, tc := range []struct {
		username, filter string
	}{
		{`q"uote`, `userName eq "q\"uote"`},
		{`back\slash`, `userName eq "back\\slash"`},
		{`mix\"ed`, `userName eq "mix\\\"ed"`},
		{`q" or userName pr or userName eq "`, `userName eq "q\" or userName pr or userName eq \""`},
		{"new\nline\x01", `userName eq "new\nline\u0001"`},
	} {
		t.Run(tc.username, func(t *testing.T) {
			rec.reset()
			r, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: connectors.Account{Username: tc.username, EmployeeID: "E1"}})
			require.NoError(t, err)
			assert.True(t, r.Created, "the lookup must not match the decoy or anyone else")
			gets := rec.requests(http.MethodGet)
			require.NotEmpty(t, gets)
			assert.Equal(t, tc.filter, gets[0].Filter)

			got, err := c.GetAccount(ctx, connectors.AccountRequest{Username: tc.username})
			require.NoError(t, err)
			assert.Equal(t, tc.username, got.Username)
			d, err := c.DeleteAccount(ctx, connectors.AccountRequest{Username: tc.username})
			require.NoError(t, err)
			assert.True(t, d.Deleted)
		})
	}
	got, err := c.GetAccount(ctx, connectors.AccountRequest{Username: "q"})
	require.NoError(t, err, "the decoy survived every delete")
	assert.Equal(t, "q", got.Username)
}

// patchBody decodes a recorded PATCH body.
func patchBody(t *testing.T, r recorded) patchRequest {
	t.Helper()
	var p struct {
		Schemas    []string
		Operations []struct {
			Op    string
			Path  string
			Value json.RawMessage
		}
	}
	require.NoError(t, json.Unmarshal(r.Body, &p), "%s", r.Body)
	out := patchRequest{Schemas: p.Schemas}
	for _, o := range p.Operations {
		op := patchOp{Op: o.Op, Path: o.Path}
		if len(o.Value) > 0 {
			op.Value = string(o.Value)
		}
		out.Operations = append(out.Operations, op)
	}
	return out
}

func userID(t *testing.T, c *Client, username string) string {
	t.Helper()
	u, err := c.findUser(testCtx(t), opGet, username)
	require.NoError(t, err)
	return u.ID
}

func TestGrantAndRevokeSendOneMember(t *testing.T) {
	rec := &recorder{}
	srv := startServer(t, rec.wrap)
	c := newClient(t, srv, nil)
	ctx := testCtx(t)
	for _, u := range []string{"alice", "bob"} {
		_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: connectors.Account{Username: u, EmployeeID: "E-" + u}})
		require.NoError(t, err)
	}
	_, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: "bob", Entitlement: "engineering"})
	require.NoError(t, err)
	alice := userID(t, c, "alice")

	rec.reset()
	r, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: "alice", Entitlement: "engineering"})
	require.NoError(t, err)
	assert.True(t, r.Changed)
	patches := rec.requests(http.MethodPatch)
	require.Len(t, patches, 1)
	assert.True(t, strings.HasPrefix(patches[0].Path, "/scim/v2/Groups/"), patches[0].Path)
	body := patchBody(t, patches[0])
	assert.Equal(t, []string{schemaPatchOp}, body.Schemas)
	require.Len(t, body.Operations, 1)
	assert.Equal(t, "add", body.Operations[0].Op)
	assert.Equal(t, "members", body.Operations[0].Path)
	assert.JSONEq(t, `[{"value":"`+alice+`"}]`, body.Operations[0].Value.(string), "exactly the one new member")

	rec.reset()
	r, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: "alice", Entitlement: "engineering"})
	require.NoError(t, err)
	assert.True(t, r.Changed)
	patches = rec.requests(http.MethodPatch)
	require.Len(t, patches, 1)
	body = patchBody(t, patches[0])
	require.Len(t, body.Operations, 1)
	assert.Equal(t, "remove", body.Operations[0].Op)
	assert.Equal(t, `members[value eq "`+alice+`"]`, body.Operations[0].Path)
	assert.Nil(t, body.Operations[0].Value, "remove names the member in the path, never a member list")

	got, err := c.GetAccount(ctx, connectors.AccountRequest{Username: "bob"})
	require.NoError(t, err)
	assert.Equal(t, []string{"engineering"}, got.Entitlements, "the other member is untouched")

	// Nothing to do sends no PATCH at all.
	rec.reset()
	r, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: "alice", Entitlement: "engineering"})
	require.NoError(t, err)
	assert.False(t, r.Changed)
	r, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: "alice", Entitlement: "no-such-group"})
	require.NoError(t, err, "an entitlement that does not exist is not held")
	assert.False(t, r.Changed)
	assert.Empty(t, rec.requests(http.MethodPatch))
}

func TestEnsureSendsOnlyChangedAttributes(t *testing.T) {
	rec := &recorder{}
	srv := startServer(t, rec.wrap)
	c := newClient(t, srv, nil)
	ctx := testCtx(t)
	acct := connectors.Account{Username: "grace", EmployeeID: "E7", GivenName: "Grace", FamilyName: "Murray",
		DisplayName: "Grace Murray", Email: "grace@example.com"}
	_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: acct, Disabled: true})
	require.NoError(t, err)
	posts := rec.requests(http.MethodPost)
	require.Len(t, posts, 1)
	assert.JSONEq(t, `{
		"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"userName": "grace",
		"name": {"givenName": "Grace", "familyName": "Murray"},
		"displayName": "Grace Murray",
		"emails": [{"value": "grace@example.com", "type": "work", "primary": true}],
		"active": false,
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "E7"}
	}`, string(posts[0].Body))

	rec.reset()
	_, err = c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: acct})
	require.NoError(t, err)
	assert.Empty(t, rec.requests(http.MethodPatch), "nothing differs, nothing is sent")

	acct.FamilyName, acct.Email, acct.EmployeeID, acct.DisplayName = "Hopper", "grace.hopper@example.com", "E8", ""
	rec.reset()
	r, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: acct})
	require.NoError(t, err)
	assert.True(t, r.Updated)
	patches := rec.requests(http.MethodPatch)
	require.Len(t, patches, 1)
	body := patchBody(t, patches[0])
	var ops []string
	for _, op := range body.Operations {
		ops = append(ops, op.Op+" "+op.Path)
	}
	assert.ElementsMatch(t, []string{
		"replace name.familyName",
		"remove displayName",
		"replace " + pathEmployeeNumber,
		"replace emails",
	}, ops, "only what differs; never active")

	got, err := c.GetAccount(ctx, connectors.AccountRequest{Username: "grace"})
	require.NoError(t, err)
	assert.Equal(t, connectors.Account{Username: "grace", EmployeeID: "E8", GivenName: "Grace", FamilyName: "Hopper",
		Email: "grace.hopper@example.com", Disabled: true}, got)
}
