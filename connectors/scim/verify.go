package scim

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/provisio-dev/provisio/connectors"
)

// opVerify names Verify in errors.
const opVerify = "Verify"

// Where a membership was read, as Verify's details say.
const (
	fromUserGroups   = "the user's groups attribute"
	fromMemberFilter = "a members filter on /Groups"
	fromMemberList   = "the group's member list"
)

// Verify reads the user back and reports whether a revocation is in
// effect. The user is found by userName and then read again by id, because
// the resource endpoint is authoritative where a search index may still
// show a change as not made (or a deleted user as present).
//
//   - CheckDisabled is verified when "active" reads false. A user without
//     "active" reads as active, and a user that is gone is not a disabled
//     one (the caller decides what a vanished account means). SCIM has no
//     session API, so live sessions cannot be checked.
//   - CheckRevoked is verified when the user is not a member of the group,
//     read from the user's "groups" attribute when the server returns it,
//     else from a members filter on /Groups, and only from a server that
//     refuses that filter by reading the group's member list. A user or
//     group that does not exist holds nothing.
//   - CheckDeleted is verified when the user is not found.
func (c *Client) Verify(ctx context.Context, req connectors.VerifyRequest) (connectors.Verification, error) {
	if err := connectors.CheckVerifyRequest(c.name, req); err != nil {
		return connectors.Verification{}, err
	}
	u, gone, err := c.freshUser(ctx, req.Username)
	if err != nil {
		return connectors.Verification{}, err
	}
	switch req.Check {
	case connectors.CheckDisabled:
		return c.verifyDisabled(req.Username, u, gone), nil
	case connectors.CheckRevoked:
		if gone != "" {
			return connectors.Verification{Verified: true, Detail: gone + ", so it holds no group"}, nil
		}
		return c.verifyRevoked(ctx, req, u)
	default:
		if gone != "" {
			return connectors.Verification{Verified: true, Detail: gone}, nil
		}
		return connectors.Verification{Detail: fmt.Sprintf(
			"SCIM user %q (id %s) still exists in %s (%s); delete it in the application",
			u.UserName, u.ID, c.name, activeText(u))}, nil
	}
}

// freshUser finds the user by userName and reads it by id. When either
// read finds no user, gone says which, in words for a Verification.
func (c *Client) freshUser(ctx context.Context, username string) (u user, gone string, err error) {
	hit, err := c.findUser(ctx, opVerify, username)
	if connectors.IsNotFound(err) {
		return user{}, fmt.Sprintf("%s has no SCIM user with userName %q", c.name, username), nil
	}
	if err != nil {
		return user{}, "", err
	}
	err = c.do(ctx, call{op: opVerify, method: http.MethodGet, path: userPath(hit.ID)}, &u)
	if connectors.IsNotFound(err) {
		return user{}, fmt.Sprintf("SCIM user %q (id %s) answers 404 Not Found in %s", username, hit.ID, c.name), nil
	}
	if err != nil {
		return user{}, "", err
	}
	if u.ID == "" { // a server that leaves the id out of its own resource
		u.ID = hit.ID
	}
	if u.UserName == "" {
		u.UserName = hit.UserName
	}
	return u, "", nil
}

func (c *Client) verifyDisabled(username string, u user, gone string) connectors.Verification {
	switch {
	case gone != "":
		return connectors.Verification{Detail: gone + ": an account that vanished is not a disabled one"}
	case u.Active == nil:
		return connectors.Verification{Detail: fmt.Sprintf(
			"SCIM user %q (id %s) in %s has no \"active\" attribute, so nothing shows it cannot log in; disable it in the application",
			username, u.ID, c.name)}
	case bool(*u.Active):
		return connectors.Verification{Detail: fmt.Sprintf(
			"SCIM user %q (id %s) still reads active=true in %s and can log in; an application that answered the disable "+
				"with success but kept the user active ignores SCIM deactivation: disable it in the application",
			username, u.ID, c.name)}
	default:
		return connectors.Verification{Verified: true, Detail: fmt.Sprintf(
			"SCIM user %q (id %s) reads active=false in %s, which refuses it new logins "+
				"(SCIM cannot see sessions already open; those are the application's to end)",
			username, u.ID, c.name)}
	}
}

func (c *Client) verifyRevoked(ctx context.Context, req connectors.VerifyRequest, u user) (connectors.Verification, error) {
	g, err := c.findGroup(ctx, opVerify, req.Entitlement)
	if connectors.IsNotFound(err) {
		return connectors.Verification{Verified: true, Detail: fmt.Sprintf(
			"%s has no group named %q, so SCIM user %q cannot hold it", c.name, req.Entitlement, u.UserName)}, nil
	}
	if err != nil {
		return connectors.Verification{}, err
	}
	in, from, err := c.isMember(ctx, u, g)
	if err != nil {
		return connectors.Verification{}, err
	}
	if in {
		return connectors.Verification{Detail: fmt.Sprintf(
			"SCIM user %q (id %s) is still a member of group %q (id %s) in %s, read from %s; remove it from the group in the application",
			u.UserName, u.ID, g.DisplayName, g.ID, c.name, from)}, nil
	}
	return connectors.Verification{Verified: true, Detail: fmt.Sprintf(
		"SCIM user %q (id %s) is not a member of group %q (id %s) in %s, read from %s",
		u.UserName, u.ID, g.DisplayName, g.ID, c.name, from)}, nil
}

// isMember reports whether u is in g and where that was read. The group's
// member list, which may hold thousands of entries, is read only from a
// server that neither returns the user's groups nor takes a members
// filter.
func (c *Client) isMember(ctx context.Context, u user, g group) (bool, string, error) {
	if u.Groups != nil {
		return holds(*u.Groups, g.ID), fromUserGroups, nil
	}
	in := false
	err := listAll(ctx, c, opVerify, "/Groups",
		[]string{"filter", `members[value eq ` + filterString(u.ID) + `]`, "attributes", "displayName"},
		func(h group) { in = in || strings.EqualFold(h.ID, g.ID) })
	if connectors.KindOf(err) != connectors.KindInvalid {
		return in, fromMemberFilter, err
	}
	var full group
	err = c.do(ctx, call{op: opVerify, method: http.MethodGet, path: groupPath(g.ID), query: query("attributes", "members")}, &full)
	if connectors.IsNotFound(err) { // deleted meanwhile: nobody holds it
		return false, fromMemberList, nil
	}
	if err != nil {
		return false, "", err
	}
	return slices.ContainsFunc(full.Members, func(m member) bool { return strings.EqualFold(m.Value, u.ID) }), fromMemberList, nil
}

func activeText(u user) string {
	switch {
	case u.Active == nil:
		return "no active attribute"
	case bool(*u.Active):
		return "active=true"
	default:
		return "active=false"
	}
}
