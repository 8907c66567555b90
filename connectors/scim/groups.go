package scim

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/provisio-dev/provisio/connectors"
)

// groupPageSize is the page size for reading groups.
const groupPageSize = 100

func groupPath(id string) string { return "/Groups/" + url.PathEscape(id) }

func itoa(n int) string { return strconv.Itoa(n) }

// findGroup looks a group up by displayName: an exact match wins, else the
// one match ignoring case (displayName is caseExact false in RFC 7643).
func (c *Client) findGroup(ctx context.Context, op, name string) (group, error) {
	if err := c.checkText(op, "entitlement", name, true); err != nil {
		return group{}, err
	}
	var lr listResponse[group]
	err := c.do(ctx, call{op: op, method: http.MethodGet, path: "/Groups",
		query: query("filter", "displayName eq "+filterString(name), "excludedAttributes", "members")}, &lr)
	if err != nil {
		return group{}, err
	}
	var folded []group
	for _, g := range lr.Resources {
		if g.DisplayName == name {
			return g, nil
		}
		if strings.EqualFold(g.DisplayName, name) {
			folded = append(folded, g)
		}
	}
	if len(folded) == 1 {
		return folded[0], nil
	}
	return group{}, connectors.Errorf(connectors.KindNotFound, c.name, op, nil, "no SCIM group with displayName %q", name)
}

// memberships returns the groups u is in: from the user's "groups"
// attribute when the server returns it, else from the Groups endpoint.
func (c *Client) memberships(ctx context.Context, op string, u user) ([]groupRef, error) {
	if u.Groups == nil {
		return c.groupsByMember(ctx, op, u.ID)
	}
	out := make([]groupRef, 0, len(*u.Groups))
	for _, g := range *u.Groups {
		if g.Display == "" && g.Value != "" {
			// "display" is optional in the groups attribute.
			var full group
			err := c.do(ctx, call{op: op, method: http.MethodGet, path: groupPath(g.Value),
				query: query("excludedAttributes", "members")}, &full)
			if connectors.IsNotFound(err) { // deleted meanwhile
				continue
			}
			if err != nil {
				return nil, err
			}
			g.Display = full.DisplayName
		}
		out = append(out, g)
	}
	return out, nil
}

// groupsByMember asks the Groups endpoint for the groups holding userID
// with the filter members[value eq "id"]; a server that refuses that
// filter is answered by reading every group's members.
func (c *Client) groupsByMember(ctx context.Context, op, userID string) ([]groupRef, error) {
	var out []groupRef
	err := listAll(ctx, c, op, "/Groups", []string{"filter", `members[value eq ` + filterString(userID) + `]`, "attributes", "displayName"},
		func(g group) { out = append(out, groupRef{Value: g.ID, Display: g.DisplayName}) })
	if connectors.KindOf(err) != connectors.KindInvalid {
		return out, err
	}
	out = nil
	err = listAll(ctx, c, op, "/Groups", []string{"attributes", "displayName,members"}, func(g group) {
		if slices.ContainsFunc(g.Members, func(m member) bool { return strings.EqualFold(m.Value, userID) }) {
			out = append(out, groupRef{Value: g.ID, Display: g.DisplayName})
		}
	})
	return out, err
}

// listAll reads every page of a listing.
func listAll[T any](ctx context.Context, c *Client, op, path string, params []string, each func(T)) error {
	for start := 1; ; {
		var lr listResponse[T]
		q := append(slices.Clone(params), "startIndex", itoa(start), "count", itoa(groupPageSize))
		if err := c.do(ctx, call{op: op, method: http.MethodGet, path: path, query: query(q...)}, &lr); err != nil {
			return err
		}
		for _, r := range lr.Resources {
			each(r)
		}
		if lastPage(lr, start, len(lr.Resources), groupPageSize) {
			return nil
		}
		start += len(lr.Resources)
	}
}

func holds(groups []groupRef, id string) bool {
	return slices.ContainsFunc(groups, func(g groupRef) bool { return strings.EqualFold(g.Value, id) })
}

// GrantEntitlement adds the user to the group with one PATCH "add" of
// that single member.
func (c *Client) GrantEntitlement(ctx context.Context, req connectors.EntitlementRequest) (connectors.EntitlementResponse, error) {
	u, err := c.findUser(ctx, opGrant, req.Username)
	if err != nil {
		return connectors.EntitlementResponse{}, err
	}
	g, err := c.findGroup(ctx, opGrant, req.Entitlement)
	if err != nil {
		return connectors.EntitlementResponse{}, err
	}
	groups, err := c.memberships(ctx, opGrant, u)
	if err != nil {
		return connectors.EntitlementResponse{}, err
	}
	if holds(groups, g.ID) {
		return connectors.EntitlementResponse{}, nil
	}
	err = c.do(ctx, call{op: opGrant, method: http.MethodPatch, path: groupPath(g.ID), body: patch(patchOp{
		Op: "add", Path: "members", Value: []map[string]string{{"value": u.ID}},
	})}, nil)
	if err != nil {
		return connectors.EntitlementResponse{}, err
	}
	return connectors.EntitlementResponse{Changed: true}, nil
}

// RevokeEntitlement removes the user from the group with one PATCH
// "remove" whose path selects that single member. A group that does not
// exist is not held, so revoking it changes nothing.
func (c *Client) RevokeEntitlement(ctx context.Context, req connectors.EntitlementRequest) (connectors.EntitlementResponse, error) {
	u, err := c.findUser(ctx, opRevoke, req.Username)
	if err != nil {
		return connectors.EntitlementResponse{}, err
	}
	g, err := c.findGroup(ctx, opRevoke, req.Entitlement)
	if connectors.IsNotFound(err) {
		return connectors.EntitlementResponse{}, nil
	}
	if err != nil {
		return connectors.EntitlementResponse{}, err
	}
	groups, err := c.memberships(ctx, opRevoke, u)
	if err != nil {
		return connectors.EntitlementResponse{}, err
	}
	if !holds(groups, g.ID) {
		return connectors.EntitlementResponse{}, nil
	}
	err = c.do(ctx, call{op: opRevoke, method: http.MethodPatch, path: groupPath(g.ID), body: patch(patchOp{
		Op: "remove", Path: "members[value eq " + filterString(u.ID) + "]",
	})}, nil)
	if err != nil {
		return connectors.EntitlementResponse{}, err
	}
	return connectors.EntitlementResponse{Changed: true}, nil
}
