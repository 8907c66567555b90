package scim

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Schema URIs (RFC 7643 §8.7, RFC 7644 §3.5.2).
const (
	schemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	schemaPatchOp    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

// pathEmployeeNumber is the PATCH path of the enterprise employeeNumber.
const pathEmployeeNumber = schemaEnterprise + ":employeeNumber"

// user is a SCIM User as read from a server. encoding/json matches keys
// ignoring case, which absorbs servers that write "UserName" or
// "resources".
type user struct {
	ID          string           `json:"id"`
	UserName    string           `json:"userName"`
	Name        *userName        `json:"name"`
	DisplayName string           `json:"displayName"`
	Emails      []map[string]any `json:"emails"`
	Active      *flexBool        `json:"active"`
	// Groups is nil when the server does not return the attribute, and
	// points to an empty slice when the user is in no group.
	Groups     *[]groupRef    `json:"groups"`
	Enterprise *enterpriseExt `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`
}

type userName struct {
	GivenName  string `json:"givenName,omitempty"`
	FamilyName string `json:"familyName,omitempty"`
}

type enterpriseExt struct {
	EmployeeNumber string `json:"employeeNumber,omitempty"`
}

// groupRef is one entry of a User's "groups" attribute.
type groupRef struct {
	Value   string `json:"value"`
	Display string `json:"display"`
}

// group is a SCIM Group as read from a server.
type group struct {
	ID          string   `json:"id"`
	DisplayName string   `json:"displayName"`
	Members     []member `json:"members"`
}

// member is one entry of a Group's "members" attribute.
type member struct {
	Value string `json:"value"`
}

// listResponse is a SCIM ListResponse (RFC 7644 §3.4.2).
type listResponse[T any] struct {
	TotalResults *flexInt `json:"totalResults"`
	ItemsPerPage *flexInt `json:"itemsPerPage"`
	Resources    []T      `json:"Resources"`
}

// newUser is the body of POST /Users.
type newUser struct {
	Schemas     []string         `json:"schemas"`
	UserName    string           `json:"userName"`
	Name        *userName        `json:"name,omitempty"`
	DisplayName string           `json:"displayName,omitempty"`
	Emails      []map[string]any `json:"emails,omitempty"`
	Active      bool             `json:"active"`
	Enterprise  enterpriseExt    `json:"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"`
}

// patchRequest is a PatchOp message (RFC 7644 §3.5.2).
type patchRequest struct {
	Schemas    []string  `json:"schemas"`
	Operations []patchOp `json:"Operations"`
}

// patchOp is one PATCH operation; op is always sent in lower case.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path,omitempty"`
	Value any    `json:"value,omitempty"`
}

func patch(ops ...patchOp) patchRequest {
	return patchRequest{Schemas: []string{schemaPatchOp}, Operations: ops}
}

// flexBool reads a JSON boolean, or a string holding one ("true",
// "False"), as some servers send.
type flexBool bool

// UnmarshalJSON implements json.Unmarshaler.
func (b *flexBool) UnmarshalJSON(data []byte) error {
	v, ok := parseBool(data)
	if !ok {
		return fmt.Errorf("scim: %s is not a boolean", truncate(data))
	}
	*b = flexBool(v)
	return nil
}

func parseBool(data []byte) (bool, bool) {
	s := strings.Trim(string(bytes.TrimSpace(data)), `"`)
	switch strings.ToLower(s) {
	case "true":
		return true, true
	case "false", "null", "":
		return false, true
	}
	return false, false
}

// boolValue reads a boolean from a decoded JSON value that may be a bool
// or a string.
func boolValue(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	}
	return false
}

// flexInt reads a JSON number, or a string holding one.
type flexInt int

// UnmarshalJSON implements json.Unmarshaler.
func (n *flexInt) UnmarshalJSON(data []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(data)), `"`)
	if s == "null" || s == "" {
		return nil
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("scim: %s is not an integer", truncate(data))
	}
	*n = flexInt(v)
	return nil
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// filterString renders s as a SCIM filter string literal: a JSON string
// (RFC 7644 §3.4.2.2 refers to RFC 7159), with quote and backslash escaped
// and control characters as escapes. \u escapes use upper-case hex, which
// every filter grammar in the wild accepts.
func filterString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// query encodes query parameters with %20 for spaces: some SCIM servers
// do not read "+" in a filter as a space.
func query(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+"="+strings.ReplaceAll(url.QueryEscape(kv[i+1]), "+", "%20"))
	}
	return strings.Join(parts, "&")
}

// pageTokenPrefix versions the page token so its format can change.
const pageTokenPrefix = "scim1:"

// encodePageToken makes the opaque token for the page starting at the
// 1-based startIndex.
func encodePageToken(startIndex int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(pageTokenPrefix + strconv.Itoa(startIndex)))
}

// decodePageToken reads a token made by encodePageToken.
func decodePageToken(token string) (int, bool) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, false
	}
	s, ok := strings.CutPrefix(string(raw), pageTokenPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}
