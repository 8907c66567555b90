package scimapp

import (
	"encoding/json"
	"strings"

	scimerrors "github.com/elimity-com/scim/errors"
	scimfilter "github.com/elimity-com/scim/filter"
	"github.com/scim2/filter-parser/v2"
)

// unescapeFilter decodes, in place, the JSON escapes the filter parser
// leaves in string compare values: the parser accepts `userName eq "a\"b"`
// but hands over a\"b, so without this a name holding a quote or backslash
// could never be found.
func unescapeFilter(e filter.Expression) error {
	switch e := e.(type) {
	case *filter.AttributeExpression:
		s, ok := e.CompareValue.(string)
		if !ok || !strings.Contains(s, `\`) {
			return nil
		}
		var out string
		if err := json.Unmarshal([]byte(`"`+s+`"`), &out); err != nil {
			return scimerrors.ScimErrorInvalidFilter
		}
		e.CompareValue = out
	case *filter.LogicalExpression:
		if err := unescapeFilter(e.Left); err != nil {
			return err
		}
		return unescapeFilter(e.Right)
	case *filter.NotExpression:
		return unescapeFilter(e.Expression)
	case *filter.ValuePath:
		return unescapeFilter(e.ValueFilter)
	}
	return nil
}

// equality returns the attribute and value of a filter of the form
// `attr eq "value"` on a top-level attribute of the core schema coreID.
func equality(e filter.Expression, coreID string) (attr, value string, ok bool) {
	a, isAttr := e.(*filter.AttributeExpression)
	if !isAttr || a.Operator != filter.EQ || a.AttributePath.SubAttribute != nil {
		return "", "", false
	}
	if uri := a.AttributePath.URI(); uri != "" && !strings.EqualFold(uri, coreID) {
		return "", "", false
	}
	value, ok = a.CompareValue.(string)
	return a.AttributePath.AttributeName, value, ok
}

// memberEquality returns the user id of a group filter
// `members[value eq "id"]` or `members.value eq "id"`.
func memberEquality(e filter.Expression) (string, bool) {
	var attr filter.AttributePath
	var cmp filter.Expression
	switch e := e.(type) {
	case *filter.ValuePath:
		attr, cmp = e.AttributePath, e.ValueFilter
	case *filter.AttributeExpression:
		if e.AttributePath.SubAttributeName() != "value" {
			return "", false
		}
		attr, cmp = e.AttributePath, &filter.AttributeExpression{
			AttributePath: filter.AttributePath{AttributeName: "value"},
			Operator:      e.Operator,
			CompareValue:  e.CompareValue,
		}
	default:
		return "", false
	}
	if !strings.EqualFold(attr.AttributeName, attrMembers) || attr.URI() != "" {
		return "", false
	}
	name, value, ok := equality(cmp, "")
	if !ok || !strings.EqualFold(name, "value") {
		return "", false
	}
	return value, true
}

// matches runs the library's filter matcher, which panics on values of an
// unexpected type; such a resource simply does not match.
func matches(v *scimfilter.Validator, doc map[string]any) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return v.PassesFilter(doc) == nil
}

// page cuts one page out of all matches (startIndex is 1-based).
func page[T any](all []T, startIndex, count int) []T {
	from := startIndex - 1
	if from >= len(all) || count <= 0 {
		return []T{}
	}
	return all[from:min(len(all), from+count)]
}
