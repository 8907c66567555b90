package scimapp

import (
	"fmt"
	"maps"
	"strings"
	"unicode/utf8"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/optional"
)

// Attribute names the app stores in columns rather than in the JSON
// document, or never stores.
const (
	attrUserName    = "userName"
	attrActive      = "active"
	attrExternalID  = "externalId"
	attrGroups      = "groups"
	attrDisplayName = "displayName"
	attrMembers     = "members"
	attrPassword    = "password"
)

// document returns the user as one editable map, the shape the library
// hands to Create: canonical attribute names, extensions nested under their
// schema URI. The read-only groups attribute is not part of it.
func (u userRow) document() map[string]any {
	doc := maps.Clone(u.Attrs)
	if doc == nil {
		doc = map[string]any{}
	}
	doc[attrUserName] = u.UserName
	doc[attrActive] = u.Active
	if u.ExternalID != nil {
		doc[attrExternalID] = *u.ExternalID
	}
	return doc
}

// userFromDocument splits a user document into columns and stored
// attributes, refusing what the app cannot store.
func userFromDocument(doc map[string]any) (userRow, error) {
	var u userRow
	name, ok := doc[attrUserName].(string)
	if !ok || name == "" {
		return u, scimerrors.ScimErrorBadRequest("userName is required")
	}
	if len(name) > maxNameLen {
		return u, scimerrors.ScimErrorBadRequest(fmt.Sprintf("userName is longer than %d bytes", maxNameLen))
	}
	u.UserName = name
	u.Active = true
	switch v := doc[attrActive].(type) {
	case nil:
	case bool:
		u.Active = v
	default:
		return u, scimerrors.ScimErrorBadRequest("active must be a boolean")
	}
	switch v := doc[attrExternalID].(type) {
	case nil:
	case string:
		u.ExternalID = &v
	default:
		return u, scimerrors.ScimErrorBadRequest("externalId must be a string")
	}
	u.Attrs = map[string]any{}
	for k, v := range doc {
		switch k {
		case attrUserName, attrActive, attrExternalID, attrGroups, "id", "meta", "schemas":
		case attrPassword:
			// A stand-in has no logins of its own; never keep a cleartext password.
		default:
			u.Attrs[k] = v
		}
	}
	if err := storable(doc); err != nil {
		return u, err
	}
	return u, nil
}

// storable refuses values PostgreSQL text and jsonb cannot hold (NUL) and
// invalid UTF-8, as a 400 rather than a database error.
func storable(v any) error {
	switch v := v.(type) {
	case string:
		if strings.ContainsRune(v, 0) || !utf8.ValidString(v) {
			return scimerrors.ScimErrorBadRequest("values must be valid UTF-8 without NUL characters")
		}
	case map[string]any:
		for k, e := range v {
			if err := storable(k); err != nil {
				return err
			}
			if err := storable(e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range v {
			if err := storable(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// resource is the user as the library returns it: the document plus the
// read-only groups attribute, always present (empty when none) so clients
// can tell the server reports memberships.
func (u userRow) resource() scim.Resource {
	attrs := scim.ResourceAttributes(u.document())
	delete(attrs, attrExternalID)
	groups := make([]any, 0, len(u.Groups))
	for _, g := range u.Groups {
		groups = append(groups, map[string]any{"value": g.ID, "display": g.Display, "type": "direct"})
	}
	attrs[attrGroups] = groups
	return scim.Resource{
		ID:         u.ID,
		ExternalID: optionalString(u.ExternalID),
		Attributes: attrs,
		Meta:       meta(u.Created, u.Modified, u.Version),
	}
}

// document returns the group as one editable map.
func (g groupRow) document() map[string]any {
	members := make([]any, 0, len(g.Members))
	for _, m := range g.Members {
		e := map[string]any{"value": m.ID, "type": "User"}
		if m.Display != "" {
			e["display"] = m.Display
		}
		members = append(members, e)
	}
	doc := map[string]any{attrDisplayName: g.DisplayName, attrMembers: members}
	if g.ExternalID != nil {
		doc[attrExternalID] = *g.ExternalID
	}
	return doc
}

// groupFromDocument splits a group document into its columns and the ids
// of its members.
func groupFromDocument(doc map[string]any) (groupRow, []string, error) {
	var g groupRow
	name, ok := doc[attrDisplayName].(string)
	if !ok || name == "" {
		return g, nil, scimerrors.ScimErrorBadRequest("displayName is required")
	}
	if len(name) > maxNameLen {
		return g, nil, scimerrors.ScimErrorBadRequest(fmt.Sprintf("displayName is longer than %d bytes", maxNameLen))
	}
	g.DisplayName = name
	switch v := doc[attrExternalID].(type) {
	case nil:
	case string:
		g.ExternalID = &v
	default:
		return g, nil, scimerrors.ScimErrorBadRequest("externalId must be a string")
	}
	if err := storable(doc); err != nil {
		return g, nil, err
	}
	var members []string
	seen := map[string]bool{}
	list, _ := doc[attrMembers].([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		id, _ := m["value"].(string)
		if !isUUID(id) {
			return g, nil, scimerrors.ScimErrorBadRequest(fmt.Sprintf("member %q is not a user of this application", id))
		}
		id = strings.ToLower(id)
		if !seen[id] {
			seen[id] = true
			members = append(members, id)
		}
	}
	return g, members, nil
}

// resource is the group as the library returns it.
func (g groupRow) resource() scim.Resource {
	attrs := scim.ResourceAttributes(g.document())
	delete(attrs, attrExternalID)
	return scim.Resource{
		ID:         g.ID,
		ExternalID: optionalString(g.ExternalID),
		Attributes: attrs,
		Meta:       meta(g.Created, g.Modified, g.Version),
	}
}

// filterDocument is the resource in the shape the library's filter matcher
// expects: extension attributes flattened to "urn:...:name" keys, plus id,
// externalId and meta so those can be filtered on too.
func filterDocument(id string, externalID *string, attrs scim.ResourceAttributes, m scim.Meta, extensions []string) map[string]any {
	doc := maps.Clone(map[string]any(attrs))
	for _, uri := range extensions {
		if ext, ok := doc[uri].(map[string]any); ok {
			for k, v := range ext {
				doc[uri+":"+k] = v
			}
		}
	}
	doc["id"] = id
	if externalID != nil {
		doc[attrExternalID] = *externalID
	}
	doc["meta"] = map[string]any{
		"created":      m.Created.UTC().Format(timeFormat),
		"lastModified": m.LastModified.UTC().Format(timeFormat),
	}
	return doc
}

func optionalString(s *string) optional.String {
	if s == nil {
		return optional.String{}
	}
	return optional.NewString(*s)
}
