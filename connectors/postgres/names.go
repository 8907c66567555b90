package postgres

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/provisio-dev/provisio/connectors"
)

// maxRoleLen is NAMEDATALEN-1: PostgreSQL silently truncates longer
// identifiers, which would make two different usernames the same role.
const maxRoleLen = 63

// maxAttrLen bounds each descriptive attribute kept in the role comment.
const maxAttrLen = 1024

// markerPrefix starts the comment of every role the connector manages.
const markerPrefix = "provisio:"

// errReservedPrefix marks a name in PostgreSQL's reserved pg_ namespace,
// which holds the predefined roles (pg_read_server_files, ...).
var errReservedPrefix = errors.New(`names starting with "pg_" are reserved for PostgreSQL's predefined roles`)

// checkRoleName reports why name cannot be a role name, or nil. The checks
// are PostgreSQL's own limits plus refusing characters no person's login
// should hold; quoting (pgx.Identifier.Sanitize) takes care of the rest.
func checkRoleName(name string) error {
	switch {
	case name == "":
		return errors.New("role name is empty")
	case len(name) > maxRoleLen:
		return fmt.Errorf("role name is %d bytes, longer than PostgreSQL's %d", len(name), maxRoleLen)
	case !utf8.ValidString(name):
		return errors.New("role name is not valid UTF-8")
	case strings.IndexByte(name, 0) >= 0:
		// Sanitize drops NUL bytes, which would silently name another role.
		return errors.New("role name contains a NUL byte")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return errors.New("role name contains a control character")
	case strings.HasPrefix(name, "pg_"):
		return errReservedPrefix
	}
	switch name {
	case "public", "none":
		// Even quoted, "public" means every role and "none" is an error.
		return fmt.Errorf("%q is a reserved role name", name)
	case "current_user", "current_role", "session_user":
		return fmt.Errorf("%q is too easily confused with the SQL keyword", name)
	}
	return nil
}

// roleName maps a username to its role name, or returns an InvalidInput
// error.
func (c *Client) roleName(op, username string) (string, error) {
	if username == "" {
		return "", connectors.Errorf(connectors.KindInvalid, c.name, op, nil, "username is empty")
	}
	role := c.prefix + username
	if err := checkRoleName(role); err != nil {
		return "", connectors.Errorf(connectors.KindInvalid, c.name, op, nil, "username %q: %v", username, err)
	}
	return role, nil
}

// groupName validates an entitlement (a group role name). The predefined
// pg_ roles grant powers close to superuser, so they are refused as
// PermissionDenied rather than as a malformed name.
func (c *Client) groupName(op, entitlement string) (string, error) {
	err := checkRoleName(entitlement)
	switch {
	case errors.Is(err, errReservedPrefix):
		return "", connectors.Errorf(connectors.KindPermission, c.name, op, nil,
			"entitlement %q is a predefined PostgreSQL role and is never granted or revoked by provisio", entitlement)
	case err != nil:
		return "", connectors.Errorf(connectors.KindInvalid, c.name, op, nil, "entitlement %q: %v", entitlement, err)
	}
	return entitlement, nil
}

// username maps a role name back to the username.
func (c *Client) username(role string) string {
	return strings.TrimPrefix(role, c.prefix)
}

// marker is the JSON kept in the comment of a managed role.
type marker struct {
	EmployeeID  string `json:"employee_id"`
	GivenName   string `json:"given_name,omitempty"`
	FamilyName  string `json:"family_name,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	Email       string `json:"email,omitempty"`
}

func markerOf(a connectors.Account) marker {
	return marker{EmployeeID: a.EmployeeID, GivenName: a.GivenName, FamilyName: a.FamilyName,
		DisplayName: a.DisplayName, Email: a.Email}
}

// checkMarker refuses attributes that cannot round-trip through the comment.
func checkMarker(m marker) error {
	if strings.TrimSpace(m.EmployeeID) == "" {
		return errors.New("employee ID is required")
	}
	for _, f := range []struct{ name, v string }{
		{"employee ID", m.EmployeeID}, {"given name", m.GivenName}, {"family name", m.FamilyName},
		{"display name", m.DisplayName}, {"email", m.Email},
	} {
		switch {
		case len(f.v) > maxAttrLen:
			return fmt.Errorf("%s is longer than %d bytes", f.name, maxAttrLen)
		case !utf8.ValidString(f.v):
			// encoding/json would replace bad bytes, so the value would not
			// read back as written.
			return fmt.Errorf("%s is not valid UTF-8", f.name)
		}
	}
	return nil
}

// comment renders the marker as the role comment.
func (m marker) comment() string {
	b, _ := json.Marshal(m) // a struct of strings always marshals
	return markerPrefix + string(b)
}

// parseComment reports whether a role comment marks a managed role, and the
// attributes it holds. A marker whose JSON is damaged still counts as
// managed; its attributes read back empty and the next EnsureAccount
// rewrites them.
func parseComment(comment string) (marker, bool) {
	rest, ok := strings.CutPrefix(comment, markerPrefix)
	if !ok {
		return marker{}, false
	}
	var m marker
	_ = json.Unmarshal([]byte(rest), &m)
	return m, true
}

// quoteLiteral renders s as an escape-string literal (E'...'). COMMENT ON
// is a utility statement that takes no parameters, so this is the one value
// not sent as one. Escape strings mean the same whatever
// standard_conforming_strings says; the connection is UTF-8 (pgx requires
// it), where no multi-byte character contains a quote or backslash byte.
// s must not contain NUL, which no text value can hold.
func quoteLiteral(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 4)
	b.WriteString("E'")
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`''`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// pageTokenPrefix versions the page token format.
const pageTokenPrefix = "v1:"

// encodePageToken hides the last role name of a page in an opaque token.
func encodePageToken(lastRole string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + lastRole))
}

// decodePageToken returns the role name a token continues after.
func decodePageToken(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return "", errors.New("page token is malformed")
	}
	role, ok := strings.CutPrefix(string(raw), pageTokenPrefix)
	if !ok || checkRoleName(role) != nil {
		return "", errors.New("page token is malformed")
	}
	return role, nil
}
