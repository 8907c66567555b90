package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/provisio-dev/provisio/connectors"
	"github.com/provisio-dev/provisio/internal/scimapp/scimapptest"
)

// bigGroupSize is the membership of the large group, from issue 10.
const bigGroupSize = 5000

// api sends one raw SCIM request to srv, for seeding and for reading the
// group back independently of the connector.
func api(t *testing.T, srv *scimapptest.Server, method, path string, body any) (int, []byte) {
	t.Helper()
	status, raw, err := rawCall(testCtx(t), srv, method, path, body)
	require.NoError(t, err)
	return status, raw
}

// rawCall is api for goroutines, which must not fail the test themselves.
func rawCall(ctx context.Context, srv *scimapptest.Server, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+srv.Token)
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// bigCtx bounds the whole test: thousands of requests take longer than
// testCtx allows on a slow or busy machine (or under -race).
func bigCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// seedBigGroup creates bigGroupSize users through the SCIM API and one
// group holding all of them, and returns the group's id and member ids.
func seedBigGroup(t *testing.T, srv *scimapptest.Server, name string) (string, []string) {
	t.Helper()
	ids := make([]string, bigGroupSize)
	errs := make([]error, bigGroupSize)
	ctx := bigCtx(t)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				ids[i], errs[i] = createMember(ctx, srv, fmt.Sprintf("member%05d", i))
			}
		}()
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	members := make([]map[string]string, len(ids))
	for i, id := range ids {
		members[i] = map[string]string{"value": id}
	}
	status, raw := api(t, srv, http.MethodPost, "/Groups", map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": name,
		"members":     members,
	})
	require.Equal(t, http.StatusCreated, status, "%s", raw)
	var grp group
	require.NoError(t, json.Unmarshal(raw, &grp))
	require.Len(t, grp.Members, bigGroupSize)
	return grp.ID, ids
}

// createMember creates one bare user and returns its id.
func createMember(ctx context.Context, srv *scimapptest.Server, name string) (string, error) {
	status, raw, err := rawCall(ctx, srv, http.MethodPost, "/Users", map[string]any{"schemas": []string{schemaUser}, "userName": name})
	if err != nil {
		return "", err
	}
	if status != http.StatusCreated {
		return "", fmt.Errorf("create %s: HTTP %d: %s", name, status, raw)
	}
	var u user
	err = json.Unmarshal(raw, &u)
	return u.ID, err
}

// membersOf reads the group's member ids straight from the server.
func membersOf(t *testing.T, srv *scimapptest.Server, id string) map[string]bool {
	t.Helper()
	status, raw := api(t, srv, http.MethodGet, "/Groups/"+id, nil)
	require.Equal(t, http.StatusOK, status, "%s", raw)
	var g group
	require.NoError(t, json.Unmarshal(raw, &g))
	out := make(map[string]bool, len(g.Members))
	for _, m := range g.Members {
		out[m.Value] = true
	}
	return out
}

// assertOneMemberPatch checks that reqs hold exactly one PATCH, on the
// group, carrying exactly one standard operation on the one member.
func assertOneMemberPatch(t *testing.T, reqs []recorded, groupID, op, memberID string) {
	t.Helper()
	var patches []recorded
	for _, r := range reqs {
		if r.Method != http.MethodGet {
			patches = append(patches, r)
		}
	}
	require.Len(t, patches, 1, "one write per membership change")
	p := patches[0]
	assert.Equal(t, http.MethodPatch, p.Method)
	assert.Equal(t, "/scim/v2/Groups/"+groupID, p.Path)
	body := patchBody(t, p)
	assert.Equal(t, []string{schemaPatchOp}, body.Schemas)
	require.Len(t, body.Operations, 1, "one operation")
	o := body.Operations[0]
	assert.Equal(t, op, o.Op, "op in lower case")
	switch op {
	case "add":
		assert.Equal(t, "members", o.Path)
		assert.JSONEq(t, `[{"value":"`+memberID+`"}]`, o.Value.(string), "exactly the one member, never the list")
	case "remove":
		assert.Equal(t, `members[value eq "`+memberID+`"]`, o.Path, "the RFC 7644 value filter selects the one member")
		assert.Nil(t, o.Value, "no member list in a remove")
	}
}

// assertMembersNotRequested checks that the connector never asked the
// server for the group's member list: groups are looked up with members
// excluded, or asked for their displayName only.
func assertMembersNotRequested(t *testing.T, reqs []recorded) {
	t.Helper()
	for _, r := range reqs {
		if r.Method != http.MethodGet || !strings.HasPrefix(r.Path, "/scim/v2/Groups") {
			continue
		}
		assert.Equal(t, "/scim/v2/Groups", r.Path, "no GET of one group, which would carry its members")
		excluded := r.Query.Get("excludedAttributes") == "members"
		displayOnly := r.Query.Get("attributes") == "displayName"
		assert.True(t, excluded || displayOnly, "GET /Groups?%s asks for members", r.Query.Encode())
	}
}

// TestBigGroupMembershipChangesOneMember grants and revokes on a group of
// 5,000 members in the real demo app: every change is one PATCH of the one
// member, the other members stay, and concurrent changes all land.
func TestBigGroupMembershipChangesOneMember(t *testing.T) {
	rec := &recorder{}
	srv := startServer(t, rec.wrap)
	c := newClient(t, srv, nil)
	ctx := bigCtx(t)
	const big = "all-hands"
	groupID, seeded := seedBigGroup(t, srv, big)

	const n = 20
	users := []string{"grantee"}
	for i := range n {
		users = append(users, fmt.Sprintf("crowd%02d", i))
	}
	ids := map[string]string{}
	for _, u := range users {
		_, err := c.EnsureAccount(ctx, connectors.EnsureAccountRequest{Account: connectors.Account{Username: u, EmployeeID: "E-" + u}})
		require.NoError(t, err)
		ids[u] = userID(t, c, u)
	}
	revoked := func(u string) connectors.Verification {
		t.Helper()
		v, err := c.Verify(ctx, connectors.VerifyRequest{Username: u, Check: connectors.CheckRevoked, Entitlement: big})
		require.NoError(t, err)
		return v
	}
	assertSeededIntact := func(have map[string]bool) {
		t.Helper()
		missing := 0
		for _, id := range seeded {
			if !have[id] {
				missing++
			}
		}
		assert.Zero(t, missing, "members the connector did not touch are all still there")
	}

	t.Run("grant and revoke one user", func(t *testing.T) {
		u := "grantee"
		rec.reset()
		r, err := c.GrantEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: big})
		require.NoError(t, err)
		assert.True(t, r.Changed)
		assertOneMemberPatch(t, rec.requests(""), groupID, "add", ids[u])
		assertMembersNotRequested(t, rec.requests(""))
		have := membersOf(t, srv, groupID)
		assert.Len(t, have, bigGroupSize+1)
		assert.True(t, have[ids[u]])
		assertSeededIntact(have)

		rec.reset()
		v := revoked(u)
		assert.False(t, v.Verified, v.Detail)
		assertMembersNotRequested(t, rec.requests(""))

		rec.reset()
		r, err = c.RevokeEntitlement(ctx, connectors.EntitlementRequest{Username: u, Entitlement: big})
		require.NoError(t, err)
		assert.True(t, r.Changed)
		assertOneMemberPatch(t, rec.requests(""), groupID, "remove", ids[u])
		assertMembersNotRequested(t, rec.requests(""))
		have = membersOf(t, srv, groupID)
		assert.Len(t, have, bigGroupSize)
		assert.False(t, have[ids[u]])
		assertSeededIntact(have)

		rec.reset()
		v = revoked(u)
		assert.True(t, v.Verified, v.Detail)
		assertMembersNotRequested(t, rec.requests(""))
	})

	// change runs op for the n crowd users at once and checks that each
	// sent one single-member PATCH.
	change := func(t *testing.T, op string, do func(connectors.EntitlementRequest) (connectors.EntitlementResponse, error)) {
		t.Helper()
		rec.reset()
		var wg sync.WaitGroup
		errs := make([]error, n)
		changed := make([]bool, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := do(connectors.EntitlementRequest{Username: users[1+i], Entitlement: big})
				errs[i], changed[i] = err, r.Changed
			}()
		}
		wg.Wait()
		for i := range n {
			require.NoError(t, errs[i], users[1+i])
			assert.True(t, changed[i], users[1+i])
		}
		patches := rec.requests(http.MethodPatch)
		require.Len(t, patches, n, "one PATCH per change")
		for i := range n {
			id := ids[users[1+i]]
			var mine []recorded
			for _, p := range patches {
				if strings.Contains(string(p.Body), id) {
					mine = append(mine, p)
				}
			}
			assertOneMemberPatch(t, mine, groupID, op, id)
		}
		assertMembersNotRequested(t, rec.requests(""))
	}

	t.Run("concurrent grants all land", func(t *testing.T) {
		change(t, "add", func(req connectors.EntitlementRequest) (connectors.EntitlementResponse, error) {
			return c.GrantEntitlement(ctx, req)
		})
		have := membersOf(t, srv, groupID)
		assert.Len(t, have, bigGroupSize+n)
		for _, u := range users[1:] {
			assert.True(t, have[ids[u]], "%s was granted", u)
			assert.False(t, revoked(u).Verified, u)
		}
		assertSeededIntact(have)
	})

	t.Run("concurrent revokes all land", func(t *testing.T) {
		change(t, "remove", func(req connectors.EntitlementRequest) (connectors.EntitlementResponse, error) {
			return c.RevokeEntitlement(ctx, req)
		})
		have := membersOf(t, srv, groupID)
		assert.Len(t, have, bigGroupSize)
		for _, u := range users[1:] {
			assert.False(t, have[ids[u]], "%s was revoked", u)
			v := revoked(u)
			assert.True(t, v.Verified, "%s: %s", u, v.Detail)
		}
		assertSeededIntact(have)
	})

	// The demo app's schema, and with it every user and the group, is
	// dropped when the test ends; the test's own users go first, through
	// the connector, as a caller would.
	for _, u := range users {
		_, err := c.DeleteAccount(ctx, connectors.AccountRequest{Username: u})
		require.NoError(t, err)
	}
	assert.Len(t, membersOf(t, srv, groupID), bigGroupSize, "deleting users outside the group leaves it alone")
}
