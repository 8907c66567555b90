package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/provisio-dev/provisio/connectors"
)

var _ connectors.EntitlementCatalog = (*Client)(nil)

// EnsureEntitlement implements connectors.EntitlementCatalog: it creates
// the group role as NOLOGIN with every privilege attribute spelled out as
// off, and sets the description as the role's comment. The role is not
// marked as managed, so it is a group and never an account to the rest of
// the connector. Names are validated as for GrantEntitlement (pg_ roles
// are PermissionDenied). An existing role that GrantEntitlement would
// accept is left as it is (Changed false); one it would refuse (a LOGIN
// role, a provisio account, or a role that is or leads to a privileged
// one) is reported, since the entitlement could never be granted.
func (c *Client) EnsureEntitlement(ctx context.Context, req connectors.EnsureEntitlementRequest) (connectors.EntitlementResponse, error) {
	const op = "EnsureEntitlement"
	name, err := c.groupName(op, req.Name)
	if err != nil {
		return connectors.EntitlementResponse{}, err
	}
	if err := checkDescription(req.Description); err != nil {
		return connectors.EntitlementResponse{}, connectors.Errorf(connectors.KindInvalid, c.name, op, nil,
			"entitlement %q: %v", req.Name, err)
	}
	resp, err := c.ensureGroup(ctx, op, name, req.Description)
	if isDuplicate(err) {
		// Created between our read and our CREATE by someone not holding
		// our lock: read again and decide.
		resp, err = c.ensureGroup(ctx, op, name, req.Description)
	}
	return resp, err
}

func (c *Client) ensureGroup(ctx context.Context, op, name, description string) (connectors.EntitlementResponse, error) {
	var resp connectors.EntitlementResponse
	err := c.inTx(ctx, op, pgx.TxOptions{}, func(tx pgx.Tx) error {
		resp = connectors.EntitlementResponse{}
		if err := lockRole(ctx, tx, name); err != nil {
			return c.fail(op, err, "lock entitlement %q", name)
		}
		g, ok, err := lookupGroup(ctx, tx, name)
		switch {
		case err != nil:
			return c.fail(op, err, "read entitlement %q", name)
		case ok:
			return c.checkExistingGroup(op, name, g)
		}
		if err := ddl(ctx, tx, "CREATE ROLE "+ident(name)+
			" WITH NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"); err != nil {
			return c.fail(op, err, "create entitlement %q", name)
		}
		if description != "" {
			if err := ddl(ctx, tx, "COMMENT ON ROLE "+ident(name)+" IS "+quoteLiteral(description)); err != nil {
				return c.fail(op, err, "describe entitlement %q", name)
			}
		}
		resp.Changed = true
		return nil
	})
	return resp, err
}

// checkExistingGroup accepts an existing role as the entitlement when
// GrantEntitlement would grant it. The name was valid, so a role that is
// not a usable group is a Conflict with what exists, not invalid input.
func (c *Client) checkExistingGroup(op, name string, g group) error {
	switch {
	case g.privileged != "":
		return connectors.Errorf(connectors.KindPermission, c.name, op, nil,
			"entitlement %q exists and is or leads to the privileged role %q; provisio never grants it", name, g.privileged)
	case g.managed:
		return connectors.Errorf(connectors.KindConflict, c.name, op, nil,
			"entitlement %q exists as a provisio account, not a group", name)
	case g.canLogin:
		return connectors.Errorf(connectors.KindConflict, c.name, op, nil,
			"entitlement %q exists as a LOGIN role, not a group", name)
	}
	return nil
}

// checkDescription refuses a description that cannot be a role comment or
// that would make the group look like a provisio account.
func checkDescription(s string) error {
	switch {
	case len(s) > maxAttrLen:
		return fmt.Errorf("description is longer than %d bytes", maxAttrLen)
	case !utf8.ValidString(s):
		return errors.New("description is not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		// No text value can hold NUL; quoteLiteral relies on it.
		return errors.New("description contains a NUL byte")
	case strings.HasPrefix(s, markerPrefix):
		return fmt.Errorf("description must not start with %q, which marks provisio accounts", markerPrefix)
	}
	return nil
}
