package scimapp

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/elimity-com/scim"
	scimerrors "github.com/elimity-com/scim/errors"
	scimfilter "github.com/elimity-com/scim/filter"
	"github.com/elimity-com/scim/schema"
	"github.com/scim2/filter-parser/v2"
)

// patcher applies PATCH operations, already parsed and validated by the
// library, to a resource document (canonical attribute names, extensions
// nested under their schema URI). The library stops at validation: applying
// add/remove/replace with paths, sub-attributes and value filters is ours.
type patcher struct {
	core       schema.Schema
	extensions []schema.Schema
}

// apply applies one operation to doc (RFC 7644 §3.5.2).
func (p patcher) apply(doc map[string]any, op scim.PatchOperation) error {
	switch op.Op {
	case scim.PatchOperationAdd, scim.PatchOperationReplace, scim.PatchOperationRemove:
	default:
		return scimerrors.ScimErrorBadRequest(fmt.Sprintf("unsupported PATCH op %q", op.Op))
	}
	if op.Path != nil {
		return p.applyPath(doc, op.Op, *op.Path, op.Value)
	}
	if op.Op == scim.PatchOperationRemove {
		return scimerrors.ScimErrorNoTarget
	}
	// No path: the value is a set of attribute paths (or extension
	// containers) and their values.
	values, ok := op.Value.(map[string]any)
	if !ok {
		return scimerrors.ScimErrorInvalidValue
	}
	for _, key := range slices.Sorted(maps.Keys(values)) {
		if ext, ok := p.extension(key); ok {
			sub, ok := values[key].(map[string]any)
			if !ok {
				return scimerrors.ScimErrorInvalidValue
			}
			for name, v := range sub {
				path, err := filter.ParsePath([]byte(ext.ID + ":" + name))
				if err != nil {
					return scimerrors.ScimErrorInvalidPath
				}
				if err := p.applyPath(doc, op.Op, path, v); err != nil {
					return err
				}
			}
			continue
		}
		path, err := filter.ParsePath([]byte(key))
		if err != nil {
			return scimerrors.ScimErrorInvalidPath
		}
		if err := p.applyPath(doc, op.Op, path, values[key]); err != nil {
			return err
		}
	}
	return nil
}

func (p patcher) extension(uri string) (schema.Schema, bool) {
	for _, e := range p.extensions {
		if strings.EqualFold(e.ID, uri) {
			return e, true
		}
	}
	return schema.Schema{}, false
}

// target finds the schema and the map holding the attribute a path names:
// doc itself for the core schema, or the extension's nested map (created
// when create is set).
func (p patcher) target(doc map[string]any, uri string, create bool) (schema.Schema, map[string]any, error) {
	if uri == "" || strings.EqualFold(uri, p.core.ID) {
		return p.core, doc, nil
	}
	ext, ok := p.extension(uri)
	if !ok {
		return schema.Schema{}, nil, scimerrors.ScimErrorInvalidPath
	}
	container, _ := doc[ext.ID].(map[string]any)
	if container == nil && create {
		container = map[string]any{}
		doc[ext.ID] = container
	}
	return ext, container, nil
}

func (p patcher) applyPath(doc map[string]any, op string, path filter.Path, value any) error {
	s, container, err := p.target(doc, path.AttributePath.URI(), op != scim.PatchOperationRemove)
	if err != nil {
		return err
	}
	if container == nil { // removing from an extension the resource does not have
		return nil
	}
	attr, ok := s.Attributes.ContainsAttribute(path.AttributePath.AttributeName)
	if !ok {
		return scimerrors.ScimErrorInvalidPath
	}
	if attr.Mutability() == "readOnly" {
		return scimerrors.ScimErrorMutability
	}
	name := attr.Name()
	sub := path.AttributePath.SubAttributeName()
	if path.SubAttribute != nil {
		if sub != "" {
			return scimerrors.ScimErrorInvalidPath
		}
		sub = *path.SubAttribute
	}
	if sub != "" {
		sa, ok := attr.SubAttributes().ContainsAttribute(sub)
		if !ok {
			return scimerrors.ScimErrorInvalidPath
		}
		sub = sa.Name()
	}
	if path.ValueExpression != nil {
		return applyFiltered(container, name, attr, path.ValueExpression, sub, op, value)
	}
	if sub != "" {
		if attr.MultiValued() {
			// "emails.value" names every element at once; RFC 7644 leaves
			// that undefined, so ask for a value filter instead.
			return scimerrors.ScimErrorInvalidPath
		}
		parent, _ := container[name].(map[string]any)
		if op == scim.PatchOperationRemove {
			if parent != nil {
				delete(parent, sub)
				if len(parent) == 0 {
					delete(container, name)
				}
			}
			return nil
		}
		if parent == nil {
			parent = map[string]any{}
			container[name] = parent
		}
		setOrDelete(parent, sub, value)
		return nil
	}
	switch op {
	case scim.PatchOperationRemove:
		list, isList := value.([]any)
		if attr.MultiValued() && isList && len(list) > 0 {
			// Some clients (Azure AD) name the members to remove in value.
			removeValues(container, name, list)
			return nil
		}
		delete(container, name)
	case scim.PatchOperationReplace:
		setOrDelete(container, name, value)
	case scim.PatchOperationAdd:
		switch {
		case attr.MultiValued():
			list, _ := value.([]any)
			addValues(container, name, list)
		case attr.AttributeType() == "complex":
			parent, _ := container[name].(map[string]any)
			if parent == nil {
				parent = map[string]any{}
				container[name] = parent
			}
			in, _ := value.(map[string]any)
			for k, v := range in {
				setOrDelete(parent, k, v)
			}
		default:
			setOrDelete(container, name, value)
		}
	}
	enforceSinglePrimary(container, name)
	return nil
}

// applyFiltered applies op to the elements of a multi-valued complex
// attribute matching expr, e.g. members[value eq "..."] or
// emails[type eq "work"].value.
func applyFiltered(container map[string]any, name string, attr schema.CoreAttribute, expr filter.Expression, sub, op string, value any) error {
	if !attr.MultiValued() || attr.AttributeType() != "complex" {
		return scimerrors.ScimErrorInvalidPath
	}
	if err := unescapeFilter(expr); err != nil {
		return err
	}
	v := scimfilter.NewFilterValidator(expr, schema.Schema{Attributes: attr.SubAttributes()})
	list, _ := container[name].([]any)
	var kept []any
	matched := false
	for _, e := range list {
		elem, ok := e.(map[string]any)
		if !ok || !matches(&v, elem) {
			kept = append(kept, e)
			continue
		}
		matched = true
		switch {
		case op == scim.PatchOperationRemove && sub == "":
			// drop the element
		case op == scim.PatchOperationRemove:
			delete(elem, sub)
			kept = append(kept, elem)
		case sub != "":
			setOrDelete(elem, sub, value)
			kept = append(kept, elem)
		default:
			repl, ok := value.(map[string]any)
			if !ok {
				return scimerrors.ScimErrorInvalidValue
			}
			kept = append(kept, repl)
		}
	}
	if !matched {
		if op == scim.PatchOperationRemove {
			return nil // already absent: removing is idempotent
		}
		return scimerrors.ScimErrorNoTarget
	}
	if len(kept) == 0 {
		delete(container, name)
	} else {
		container[name] = kept
	}
	enforceSinglePrimary(container, name)
	return nil
}

// setOrDelete sets key to v, or removes it when v is empty: SCIM treats an
// unassigned and an empty value alike.
func setOrDelete(m map[string]any, key string, v any) {
	switch x := v.(type) {
	case nil:
		delete(m, key)
	case []any:
		if len(x) == 0 {
			delete(m, key)
			return
		}
		m[key] = x
	default:
		m[key] = v
	}
}

// addValues appends to a multi-valued attribute the values it does not yet
// hold; an element with the same "value" as an existing one is merged into
// it, so adding a present member changes nothing.
func addValues(container map[string]any, name string, values []any) {
	list, _ := container[name].([]any)
	for _, v := range values {
		i := slices.IndexFunc(list, func(e any) bool { return sameValue(e, v) })
		if i < 0 {
			list = append(list, v)
			continue
		}
		if old, ok := list[i].(map[string]any); ok {
			if in, ok := v.(map[string]any); ok {
				for k, x := range in {
					old[k] = x
				}
			}
		}
	}
	if len(list) > 0 {
		container[name] = list
	}
}

// removeValues drops the elements with the same "value" as one of values.
func removeValues(container map[string]any, name string, values []any) {
	list, _ := container[name].([]any)
	list = slices.DeleteFunc(list, func(e any) bool {
		return slices.ContainsFunc(values, func(v any) bool { return sameValue(e, v) })
	})
	if len(list) == 0 {
		delete(container, name)
		return
	}
	container[name] = list
}

// sameValue compares two elements of a multi-valued attribute by their
// "value" sub-attribute (ignoring case, as for ids and emails), or whole
// when they are simple.
func sameValue(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok != bok {
		return false
	}
	if !aok {
		return a == b
	}
	av, _ := am["value"].(string)
	bv, _ := bm["value"].(string)
	return av != "" && strings.EqualFold(av, bv)
}

// enforceSinglePrimary keeps "primary": true on at most one element (RFC
// 7643 §2.4), the last one set.
func enforceSinglePrimary(container map[string]any, name string) {
	list, _ := container[name].([]any)
	last := -1
	for i, e := range list {
		if m, ok := e.(map[string]any); ok && m["primary"] == true {
			last = i
		}
	}
	for i, e := range list {
		if m, ok := e.(map[string]any); ok && i != last && m["primary"] == true {
			m["primary"] = false
		}
	}
}
