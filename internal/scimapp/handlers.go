package scimapp

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	"github.com/elimity-com/scim/schema"
)

// timeFormat is how meta dates are rendered for filtering; the library
// renders them the same way in responses.
const timeFormat = time.RFC3339

// enterpriseSchema is the enterprise User extension URI (RFC 7643 §4.3).
const enterpriseSchema = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

func meta(created, modified time.Time, version int64) scim.Meta {
	return scim.Meta{Created: &created, LastModified: &modified, Version: fmt.Sprintf(`W/"%d"`, version)}
}

// withExternalID adds the common externalId attribute to a resource schema,
// as the library does when it validates PATCH paths.
func withExternalID(s schema.Schema) schema.Schema {
	s.Attributes = append(s.Attributes[:len(s.Attributes):len(s.Attributes)],
		schema.SimpleCoreAttribute(schema.SimpleStringParams(schema.StringParams{
			CaseExact: true,
			Name:      attrExternalID,
		})))
	return s
}

// failure returns err to the library as is when it is a SCIM error, and
// otherwise logs it and answers a bare 500, so that database details never
// reach a client.
func failure(log *slog.Logger, r *http.Request, what string, err error) error {
	var se scimerrors.ScimError
	if errors.As(err, &se) {
		return se
	}
	log.ErrorContext(r.Context(), "scimdemo: "+what+" failed", "method", r.Method, "path", r.URL.Path, "error", err)
	return scimerrors.ScimError{Status: http.StatusInternalServerError, Detail: "internal error; see the scimdemo log"}
}

// userHandler serves /Users for the library.
type userHandler struct {
	store   *Store
	patcher patcher
	log     *slog.Logger
}

var _ scim.ResourceHandler = userHandler{}

// Create stores a new user.
func (h userHandler) Create(r *http.Request, attrs scim.ResourceAttributes) (scim.Resource, error) {
	u, err := userFromDocument(attrs)
	if err != nil {
		return scim.Resource{}, err
	}
	row, err := h.store.createUser(r.Context(), u)
	if err != nil {
		return scim.Resource{}, failure(h.log, r, "create user", err)
	}
	return row.resource(), nil
}

// Get reads one user.
func (h userHandler) Get(r *http.Request, id string) (scim.Resource, error) {
	row, err := h.store.getUser(r.Context(), id)
	if err != nil {
		return scim.Resource{}, failure(h.log, r, "get user", err)
	}
	return row.resource(), nil
}

// GetAll lists users, filtered and paged.
func (h userHandler) GetAll(r *http.Request, params scim.ListRequestParams) (scim.Page, error) {
	ctx := r.Context()
	var w *where
	if v := params.FilterValidator; v != nil {
		if err := unescapeFilter(v.GetFilter()); err != nil {
			return scim.Page{}, err
		}
		attr, value, ok := equality(v.GetFilter(), h.patcher.core.ID)
		switch {
		case ok && strings.EqualFold(attr, attrUserName):
			w = &where{cond: `lower(user_name) = lower($1)`, arg: value}
		case ok && strings.EqualFold(attr, "id"):
			w = &where{cond: `id::text = lower($1)`, arg: value}
		case ok && strings.EqualFold(attr, attrExternalID):
			w = &where{cond: `external_id = $1`, arg: value}
		default:
			return h.scan(r, params)
		}
	}
	rows, total, err := h.store.listUsers(ctx, w, params.StartIndex-1, params.Count)
	if err != nil {
		return scim.Page{}, failure(h.log, r, "list users", err)
	}
	return userPage(rows, total), nil
}

// scan evaluates a filter the SQL fast paths do not cover with the
// library's matcher over every user. Fine for a demo's few thousand users.
func (h userHandler) scan(r *http.Request, params scim.ListRequestParams) (scim.Page, error) {
	rows, _, err := h.store.listUsers(r.Context(), nil, 0, math.MaxInt32)
	if err != nil {
		return scim.Page{}, failure(h.log, r, "list users", err)
	}
	var hits []userRow
	for _, u := range rows {
		res := u.resource()
		if matches(params.FilterValidator, filterDocument(u.ID, u.ExternalID, res.Attributes, res.Meta, []string{enterpriseSchema})) {
			hits = append(hits, u)
		}
	}
	return userPage(page(hits, params.StartIndex, params.Count), len(hits)), nil
}

func userPage(rows []userRow, total int) scim.Page {
	p := scim.Page{TotalResults: total, Resources: make([]scim.Resource, 0, len(rows))}
	for _, u := range rows {
		p.Resources = append(p.Resources, u.resource())
	}
	return p
}

// Replace overwrites every attribute of a user (PUT); group memberships are
// not user attributes and stay.
func (h userHandler) Replace(r *http.Request, id string, attrs scim.ResourceAttributes) (scim.Resource, error) {
	row, err := h.store.updateUser(r.Context(), id, func(doc map[string]any) error {
		clear(doc)
		maps.Copy(doc, attrs)
		return nil
	})
	if err != nil {
		return scim.Resource{}, failure(h.log, r, "replace user", err)
	}
	return row.resource(), nil
}

// Delete removes a user and its memberships.
func (h userHandler) Delete(r *http.Request, id string) error {
	if err := h.store.deleteUser(r.Context(), id); err != nil {
		return failure(h.log, r, "delete user", err)
	}
	return nil
}

// Patch applies PATCH operations to a user in one transaction.
func (h userHandler) Patch(r *http.Request, id string, ops []scim.PatchOperation) (scim.Resource, error) {
	row, err := h.store.updateUser(r.Context(), id, func(doc map[string]any) error {
		for _, op := range ops {
			if err := h.patcher.apply(doc, op); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return scim.Resource{}, failure(h.log, r, "patch user", err)
	}
	return row.resource(), nil
}

// groupHandler serves /Groups for the library.
type groupHandler struct {
	store   *Store
	patcher patcher
	log     *slog.Logger
}

var _ scim.ResourceHandler = groupHandler{}

// Create stores a new group with its members.
func (h groupHandler) Create(r *http.Request, attrs scim.ResourceAttributes) (scim.Resource, error) {
	g, members, err := groupFromDocument(attrs)
	if err != nil {
		return scim.Resource{}, err
	}
	row, err := h.store.createGroup(r.Context(), g, members)
	if err != nil {
		return scim.Resource{}, failure(h.log, r, "create group", err)
	}
	return row.resource(), nil
}

// Get reads one group with its members.
func (h groupHandler) Get(r *http.Request, id string) (scim.Resource, error) {
	row, err := h.store.getGroup(r.Context(), id)
	if err != nil {
		return scim.Resource{}, failure(h.log, r, "get group", err)
	}
	return row.resource(), nil
}

// GetAll lists groups, filtered and paged.
func (h groupHandler) GetAll(r *http.Request, params scim.ListRequestParams) (scim.Page, error) {
	var w *where
	if v := params.FilterValidator; v != nil {
		if err := unescapeFilter(v.GetFilter()); err != nil {
			return scim.Page{}, err
		}
		attr, value, ok := equality(v.GetFilter(), h.patcher.core.ID)
		member, isMember := memberEquality(v.GetFilter())
		switch {
		case ok && strings.EqualFold(attr, attrDisplayName):
			w = &where{cond: `lower(display_name) = lower($1)`, arg: value}
		case ok && strings.EqualFold(attr, "id"):
			w = &where{cond: `id::text = lower($1)`, arg: value}
		case ok && strings.EqualFold(attr, attrExternalID):
			w = &where{cond: `external_id = $1`, arg: value}
		case isMember:
			w = &where{cond: `EXISTS (SELECT 1 FROM members m WHERE m.group_id = groups.id AND m.user_id::text = lower($1))`, arg: member}
		default:
			return h.scan(r, params)
		}
	}
	rows, total, err := h.store.listGroups(r.Context(), w, params.StartIndex-1, params.Count)
	if err != nil {
		return scim.Page{}, failure(h.log, r, "list groups", err)
	}
	return groupPage(rows, total), nil
}

func (h groupHandler) scan(r *http.Request, params scim.ListRequestParams) (scim.Page, error) {
	rows, _, err := h.store.listGroups(r.Context(), nil, 0, math.MaxInt32)
	if err != nil {
		return scim.Page{}, failure(h.log, r, "list groups", err)
	}
	var hits []groupRow
	for _, g := range rows {
		res := g.resource()
		if matches(params.FilterValidator, filterDocument(g.ID, g.ExternalID, res.Attributes, res.Meta, nil)) {
			hits = append(hits, g)
		}
	}
	return groupPage(page(hits, params.StartIndex, params.Count), len(hits)), nil
}

func groupPage(rows []groupRow, total int) scim.Page {
	p := scim.Page{TotalResults: total, Resources: make([]scim.Resource, 0, len(rows))}
	for _, g := range rows {
		p.Resources = append(p.Resources, g.resource())
	}
	return p
}

// Replace overwrites a group (PUT), members included; only the difference
// in membership is written.
func (h groupHandler) Replace(r *http.Request, id string, attrs scim.ResourceAttributes) (scim.Resource, error) {
	row, err := h.store.updateGroup(r.Context(), id, func(doc map[string]any) error {
		clear(doc)
		maps.Copy(doc, attrs)
		return nil
	})
	if err != nil {
		return scim.Resource{}, failure(h.log, r, "replace group", err)
	}
	return row.resource(), nil
}

// Delete removes a group.
func (h groupHandler) Delete(r *http.Request, id string) error {
	if err := h.store.deleteGroup(r.Context(), id); err != nil {
		return failure(h.log, r, "delete group", err)
	}
	return nil
}

// Patch applies PATCH operations to a group; member changes are written as
// single-row inserts and deletes.
func (h groupHandler) Patch(r *http.Request, id string, ops []scim.PatchOperation) (scim.Resource, error) {
	row, err := h.store.updateGroup(r.Context(), id, func(doc map[string]any) error {
		for _, op := range ops {
			if err := h.patcher.apply(doc, op); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return scim.Resource{}, failure(h.log, r, "patch group", err)
	}
	return row.resource(), nil
}
