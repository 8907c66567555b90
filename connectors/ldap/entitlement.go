package ldap

import (
	"context"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/provisio-dev/provisio/connectors"
)

var _ connectors.EntitlementCatalog = (*Client)(nil)

const attrDescription = "description"

// maxDescriptionLength is the longest description accepted, in characters:
// the upper bound OpenLDAP's core schema gives the description attribute.
const maxDescriptionLength = 1024

// EnsureEntitlement implements connectors.EntitlementCatalog. It creates
// the groupOfNames cn=<name>,GroupsDN holding only Config.PlaceholderMember
// (groupOfNames needs one member) and the description, when given. A
// groupOfNames with that cn anywhere under GroupsDN already is the
// entitlement GrantEntitlement would use, so then nothing is created and an
// existing group's description is left alone.
func (c *Client) EnsureEntitlement(ctx context.Context, req connectors.EnsureEntitlementRequest) (connectors.EntitlementResponse, error) {
	const op = "EnsureEntitlement"
	if err := validateGroup(op, req.Name); err != nil {
		return connectors.EntitlementResponse{}, err
	}
	if err := validateDescription(req.Description); err != nil {
		return connectors.EntitlementResponse{}, connectors.Errorf(connectors.KindInvalid, appName, op, nil,
			"description of entitlement %q %v", truncate(req.Name), err)
	}
	dn := buildDN(attrCN, req.Name, c.cfg.GroupsDN)
	var resp connectors.EntitlementResponse
	err := c.run(ctx, op, func(conn *goldap.Conn) error {
		resp = connectors.EntitlementResponse{}
		_, err := c.findGroup(conn, op, req.Name)
		if err == nil || !connectors.IsNotFound(err) {
			return err
		}
		add := goldap.NewAddRequest(dn, nil)
		add.Attribute(attrObjectClass, []string{"top", "groupOfNames"})
		add.Attribute(attrCN, []string{req.Name})
		add.Attribute(attrMember, []string{c.cfg.PlaceholderMember})
		if req.Description != "" {
			add.Attribute(attrDescription, []string{req.Description})
		}
		err = conn.Add(add)
		switch {
		case err == nil:
			resp.Changed = true
			return nil
		case !hasCode(err, goldap.LDAPResultEntryAlreadyExists):
			return classifyf(op, err, "creating group %q", req.Name)
		}
		// Either created concurrently, which is fine, or the DN is taken by
		// an entry that is not a groupOfNames, which grants could not use.
		if _, err := c.findGroup(conn, op, req.Name); connectors.IsNotFound(err) {
			return connectors.Errorf(connectors.KindConflict, appName, op, nil,
				"entry %s exists but is not a groupOfNames", dn)
		} else if err != nil {
			return err
		}
		return nil
	})
	return resp, err
}

var errDescriptionTooLong = errors.New("is longer than 1024 characters")

// validateDescription refuses descriptions the directory would reject or
// rewrite. Line breaks and tabs are allowed: descriptions may span lines.
func validateDescription(s string) error {
	switch {
	case !utf8.ValidString(s):
		return errNotUTF8
	case utf8.RuneCountInString(s) > maxDescriptionLength:
		return errDescriptionTooLong
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' }) >= 0:
		return errControlChar
	}
	return nil
}
