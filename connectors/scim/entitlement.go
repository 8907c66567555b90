package scim

import (
	"context"
	"net/http"

	"github.com/provisio-dev/provisio/connectors"
)

var _ connectors.EntitlementCatalog = (*Client)(nil)

// opEnsureEntitlement names EnsureEntitlement in errors.
const opEnsureEntitlement = "EnsureEntitlement"

// schemaGroup is the core Group schema URI (RFC 7643 §8.7.1).
const schemaGroup = "urn:ietf:params:scim:schemas:core:2.0:Group"

// newGroup is the body of POST /Groups.
type newGroup struct {
	Schemas     []string `json:"schemas"`
	DisplayName string   `json:"displayName"`
}

// EnsureEntitlement implements connectors.EntitlementCatalog: it looks the
// group up by displayName as GrantEntitlement does (so a group differing
// only in case counts as existing) and creates it with POST /Groups when
// absent. The core Group schema has no description attribute, so
// req.Description is not sent.
func (c *Client) EnsureEntitlement(ctx context.Context, req connectors.EnsureEntitlementRequest) (connectors.EntitlementResponse, error) {
	const op = opEnsureEntitlement
	_, err := c.findGroup(ctx, op, req.Name)
	if err == nil || !connectors.IsNotFound(err) {
		return connectors.EntitlementResponse{}, err
	}
	err = c.do(ctx, call{op: op, method: http.MethodPost, path: "/Groups",
		body: newGroup{Schemas: []string{schemaGroup}, DisplayName: req.Name}}, nil)
	if err == nil {
		return connectors.EntitlementResponse{Changed: true}, nil
	}
	if connectors.KindOf(err) != connectors.KindConflict {
		return connectors.EntitlementResponse{}, err
	}
	// Created between our lookup and POST: that group is the one wanted. A
	// conflict with a group we still cannot find is reported as it came.
	if _, ferr := c.findGroup(ctx, op, req.Name); ferr != nil {
		if connectors.IsNotFound(ferr) {
			return connectors.EntitlementResponse{}, err
		}
		return connectors.EntitlementResponse{}, ferr
	}
	return connectors.EntitlementResponse{}, nil
}
