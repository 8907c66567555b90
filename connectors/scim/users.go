package scim

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/provisio-dev/provisio/connectors"
)

// Connector operation names, as they appear in errors.
const (
	opEnsure  = "EnsureAccount"
	opGrant   = "GrantEntitlement"
	opRevoke  = "RevokeEntitlement"
	opDisable = "DisableAccount"
	opEnable  = "EnableAccount"
	opDelete  = "DeleteAccount"
	opGet     = "GetAccount"
	opList    = "ListAccounts"
)

func userPath(id string) string { return "/Users/" + url.PathEscape(id) }

// checkText refuses a value that cannot travel in SCIM JSON unchanged.
func (c *Client) checkText(op, field, v string, required bool) error {
	switch {
	case required && v == "":
		return connectors.Errorf(connectors.KindInvalid, c.name, op, nil, "%s is required", field)
	case !utf8.ValidString(v):
		return connectors.Errorf(connectors.KindInvalid, c.name, op, nil, "%s is not valid UTF-8", field)
	}
	return nil
}

// findUser looks a user up by userName. SCIM declares userName caseExact
// false, so the server may answer with a different case; an exact match
// wins, else the one case-insensitive match is the same account.
func (c *Client) findUser(ctx context.Context, op, username string) (user, error) {
	if err := c.checkText(op, "username", username, true); err != nil {
		return user{}, err
	}
	var lr listResponse[user]
	err := c.do(ctx, call{
		op: op, method: http.MethodGet, path: "/Users",
		query: query("filter", "userName eq "+filterString(username)),
	}, &lr)
	if err != nil {
		return user{}, err
	}
	var folded []user
	for _, u := range lr.Resources {
		if u.UserName == username {
			return u, nil
		}
		if strings.EqualFold(u.UserName, username) {
			folded = append(folded, u)
		}
	}
	if len(folded) == 1 {
		return folded[0], nil
	}
	return user{}, connectors.Errorf(connectors.KindNotFound, c.name, op, nil, "no SCIM user with userName %q", username)
}

// EnsureAccount creates the user, or PATCHes the attributes that differ.
// It never changes "active" of an existing user.
func (c *Client) EnsureAccount(ctx context.Context, req connectors.EnsureAccountRequest) (connectors.EnsureAccountResponse, error) {
	a := req.Account
	if err := c.checkText(opEnsure, "username", a.Username, true); err != nil {
		return connectors.EnsureAccountResponse{}, err
	}
	if err := c.checkText(opEnsure, "employee ID", a.EmployeeID, true); err != nil {
		return connectors.EnsureAccountResponse{}, err
	}
	for _, f := range []struct{ name, v string }{
		{"given name", a.GivenName}, {"family name", a.FamilyName}, {"display name", a.DisplayName}, {"email", a.Email},
	} {
		if err := c.checkText(opEnsure, f.name, f.v, false); err != nil {
			return connectors.EnsureAccountResponse{}, err
		}
	}
	u, err := c.findUser(ctx, opEnsure, a.Username)
	if connectors.IsNotFound(err) {
		err = c.do(ctx, call{op: opEnsure, method: http.MethodPost, path: "/Users", body: newUserBody(a, !req.Disabled)}, nil)
		if err == nil {
			return connectors.EnsureAccountResponse{Created: true}, nil
		}
		if connectors.KindOf(err) != connectors.KindConflict {
			return connectors.EnsureAccountResponse{}, err
		}
		// Someone created it between our lookup and POST: update that one.
		u, err = c.findUser(ctx, opEnsure, a.Username)
	}
	if err != nil {
		return connectors.EnsureAccountResponse{}, err
	}
	ops := diffUser(u, a)
	if len(ops) == 0 {
		return connectors.EnsureAccountResponse{}, nil
	}
	if err := c.do(ctx, call{op: opEnsure, method: http.MethodPatch, path: userPath(u.ID), body: patch(ops...)}, nil); err != nil {
		return connectors.EnsureAccountResponse{}, err
	}
	return connectors.EnsureAccountResponse{Updated: true}, nil
}

func newUserBody(a connectors.Account, active bool) newUser {
	body := newUser{
		Schemas:     []string{schemaUser, schemaEnterprise},
		UserName:    a.Username,
		DisplayName: a.DisplayName,
		Active:      active,
		Enterprise:  enterpriseExt{EmployeeNumber: a.EmployeeID},
	}
	if a.GivenName != "" || a.FamilyName != "" {
		body.Name = &userName{GivenName: a.GivenName, FamilyName: a.FamilyName}
	}
	if a.Email != "" {
		body.Emails = []map[string]any{{"value": a.Email, "type": "work", "primary": true}}
	}
	return body
}

// diffUser returns the PATCH operations that make u match a: "replace" for
// a changed value, "remove" for one the request clears.
func diffUser(u user, a connectors.Account) []patchOp {
	var ops []patchOp
	set := func(path, have, want string) {
		switch {
		case have == want:
		case want == "":
			ops = append(ops, patchOp{Op: "remove", Path: path})
		default:
			ops = append(ops, patchOp{Op: "replace", Path: path, Value: want})
		}
	}
	var name userName
	if u.Name != nil {
		name = *u.Name
	}
	set("name.givenName", name.GivenName, a.GivenName)
	set("name.familyName", name.FamilyName, a.FamilyName)
	set("displayName", u.DisplayName, a.DisplayName)
	var emp string
	if u.Enterprise != nil {
		emp = u.Enterprise.EmployeeNumber
	}
	set(pathEmployeeNumber, emp, a.EmployeeID)
	// Servers may canonicalise the case of an address; that is no change.
	if !strings.EqualFold(primaryEmail(u.Emails), a.Email) {
		emails := withEmail(u.Emails, a.Email)
		if len(emails) == 0 {
			ops = append(ops, patchOp{Op: "remove", Path: "emails"})
		} else {
			ops = append(ops, patchOp{Op: "replace", Path: "emails", Value: emails})
		}
	}
	return ops
}

// primaryIndex picks the address the connector manages: the primary one,
// else the work one, else the first.
func primaryIndex(emails []map[string]any) int {
	if i := slices.IndexFunc(emails, func(e map[string]any) bool { return boolValue(e["primary"]) }); i >= 0 {
		return i
	}
	if i := slices.IndexFunc(emails, func(e map[string]any) bool {
		t, _ := e["type"].(string)
		return strings.EqualFold(t, "work")
	}); i >= 0 {
		return i
	}
	if len(emails) > 0 {
		return 0
	}
	return -1
}

func primaryEmail(emails []map[string]any) string {
	if i := primaryIndex(emails); i >= 0 {
		v, _ := emails[i]["value"].(string)
		return v
	}
	return ""
}

// withEmail returns the user's addresses with the managed one set to email
// (or dropped when email is empty), keeping the others. Elements are
// rebuilt from the standard sub-attributes with proper JSON types, so a
// server's string booleans are not echoed back.
func withEmail(emails []map[string]any, email string) []map[string]any {
	out := make([]map[string]any, 0, len(emails)+1)
	managed := primaryIndex(emails)
	for i, e := range emails {
		if i == managed {
			continue
		}
		m := map[string]any{"primary": false}
		for _, k := range []string{"value", "type", "display"} {
			if v, ok := e[k].(string); ok && v != "" {
				m[k] = v
			}
		}
		out = append(out, m)
	}
	if email == "" {
		return out
	}
	t := "work"
	if managed >= 0 {
		if have, ok := emails[managed]["type"].(string); ok && have != "" {
			t = have
		}
	}
	return append(out, map[string]any{"value": email, "type": t, "primary": true})
}

// isActive reads "active"; a server that omits it is taken to mean active.
func (u user) isActive() bool { return u.Active == nil || bool(*u.Active) }

// setActive PATCHes "active" when it differs.
func (c *Client) setActive(ctx context.Context, op, username string, active bool) (bool, error) {
	u, err := c.findUser(ctx, op, username)
	if err != nil {
		return false, err
	}
	if u.isActive() == active {
		return false, nil
	}
	err = c.do(ctx, call{op: op, method: http.MethodPatch, path: userPath(u.ID),
		body: patch(patchOp{Op: "replace", Path: "active", Value: active})}, nil)
	return err == nil, err
}

// DisableAccount sets active to false, which blocks new logins. SCIM has
// no session API, so live sessions are left to the application and
// SessionsEnded is always 0.
func (c *Client) DisableAccount(ctx context.Context, req connectors.AccountRequest) (connectors.DisableResponse, error) {
	changed, err := c.setActive(ctx, opDisable, req.Username, false)
	return connectors.DisableResponse{Changed: changed}, err
}

// EnableAccount sets active to true.
func (c *Client) EnableAccount(ctx context.Context, req connectors.AccountRequest) (connectors.EnableResponse, error) {
	changed, err := c.setActive(ctx, opEnable, req.Username, true)
	return connectors.EnableResponse{Changed: changed}, err
}

// DeleteAccount deletes the user; a user that is already gone is not an
// error.
func (c *Client) DeleteAccount(ctx context.Context, req connectors.AccountRequest) (connectors.DeleteResponse, error) {
	u, err := c.findUser(ctx, opDelete, req.Username)
	if connectors.IsNotFound(err) {
		return connectors.DeleteResponse{}, nil
	}
	if err != nil {
		return connectors.DeleteResponse{}, err
	}
	err = c.do(ctx, call{op: opDelete, method: http.MethodDelete, path: userPath(u.ID)}, nil)
	if connectors.IsNotFound(err) { // deleted concurrently
		return connectors.DeleteResponse{}, nil
	}
	if err != nil {
		return connectors.DeleteResponse{}, err
	}
	return connectors.DeleteResponse{Deleted: true}, nil
}

// GetAccount reads the user and the names of its groups.
func (c *Client) GetAccount(ctx context.Context, req connectors.AccountRequest) (connectors.Account, error) {
	u, err := c.findUser(ctx, opGet, req.Username)
	if err != nil {
		return connectors.Account{}, err
	}
	return c.account(ctx, opGet, u)
}

func (c *Client) account(ctx context.Context, op string, u user) (connectors.Account, error) {
	groups, err := c.memberships(ctx, op, u)
	if err != nil {
		return connectors.Account{}, err
	}
	a := connectors.Account{
		Username:    u.UserName,
		DisplayName: u.DisplayName,
		Email:       primaryEmail(u.Emails),
		Disabled:    !u.isActive(),
	}
	if u.Name != nil {
		a.GivenName, a.FamilyName = u.Name.GivenName, u.Name.FamilyName
	}
	if u.Enterprise != nil {
		a.EmployeeID = u.Enterprise.EmployeeNumber
	}
	for _, g := range groups {
		a.Entitlements = append(a.Entitlements, g.Display)
	}
	slices.Sort(a.Entitlements)
	a.Entitlements = slices.Compact(a.Entitlements)
	return a, nil
}

// ListAccounts reads one page of users with startIndex/count paging. The
// token is the opaque next startIndex. Without totalResults a page shorter
// than asked for is the last one.
func (c *Client) ListAccounts(ctx context.Context, req connectors.ListAccountsRequest) (connectors.ListAccountsResponse, error) {
	size := req.PageSizeOrDefault()
	start := 1
	if req.PageToken != "" {
		var ok bool
		if start, ok = decodePageToken(req.PageToken); !ok {
			return connectors.ListAccountsResponse{}, connectors.Errorf(connectors.KindInvalid, c.name, opList, nil, "page token is not one this connector issued")
		}
	}
	var lr listResponse[user]
	err := c.do(ctx, call{op: opList, method: http.MethodGet, path: "/Users",
		query: query("startIndex", itoa(start), "count", itoa(size))}, &lr)
	if err != nil {
		return connectors.ListAccountsResponse{}, err
	}
	users := lr.Resources
	if len(users) > size { // a server that ignores count
		users = users[:size]
	}
	resp := connectors.ListAccountsResponse{Accounts: make([]connectors.Account, 0, len(users))}
	for _, u := range users {
		a, err := c.account(ctx, opList, u)
		if err != nil {
			return connectors.ListAccountsResponse{}, err
		}
		resp.Accounts = append(resp.Accounts, a)
	}
	if !lastPage(lr, start, len(users), size) {
		resp.NextPageToken = encodePageToken(start + len(users))
	}
	return resp, nil
}

// lastPage decides whether a listing ends after this page.
func lastPage[T any](lr listResponse[T], start, got, asked int) bool {
	if got == 0 {
		return true
	}
	if lr.TotalResults != nil {
		return start-1+got >= int(*lr.TotalResults)
	}
	// No totalResults: a page shorter than the page size is the last. The
	// server's own page size (itemsPerPage) counts when it caps ours.
	limit := asked
	if lr.ItemsPerPage != nil && int(*lr.ItemsPerPage) > 0 && int(*lr.ItemsPerPage) < limit {
		limit = int(*lr.ItemsPerPage)
	}
	return got < limit
}
