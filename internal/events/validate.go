package events

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/provisio-dev/provisio/internal/hr"
	"github.com/provisio-dev/provisio/policy"
	"github.com/provisio-dev/provisio/workflows"
)

// MaxTextLen bounds the free text of an event (reason, justification):
// what the workflows keep of a comment.
const MaxTextLen = workflows.MaxCommentLen

// Validate checks the event's shape without any I/O: a known type, the
// fields that type needs, well-formed values, and no field another type
// uses. It returns an *InvalidError naming every field that is wrong, or
// nil. Start calls it first; callers may call it earlier to refuse input
// before they connect anywhere.
func (e Event) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &hr.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	stray := func(field string, set bool) {
		if set {
			bad(field, "is not part of a %s event", e.Type)
		}
	}
	switch e.Type {
	case TypeHire, TypeMove:
		stray("employee_id", e.EmployeeID != "")
		stray("effective", !e.Effective.IsZero())
		stray("reason", e.Reason != "")
		stray("entitlement", e.Entitlement != "")
		stray("duration", e.Duration != "")
		stray("justification", e.Justification != "")
		stray("requested_by", e.RequestedBy != "")
		if e.Person == nil {
			bad("person", "is required: the person's full HR record")
			break
		}
		p := withDefaults(*e.Person)
		if p.Status == hr.StatusTerm {
			verb := "hire"
			if e.Type == TypeMove {
				verb = "move"
			}
			bad("status", "employee %s has status terminated: refusing to %s", clip(p.EmployeeID), verb)
			break
		}
		if err := p.Validate(); err != nil {
			errs = append(errs, err)
		}
	case TypeTerminate:
		stray("person", e.Person != nil)
		stray("entitlement", e.Entitlement != "")
		stray("duration", e.Duration != "")
		stray("justification", e.Justification != "")
		stray("requested_by", e.RequestedBy != "")
		checkEmployeeID(bad, "employee_id", e.EmployeeID, true)
		checkFreeText(bad, "reason", e.Reason)
	case TypeRequestAccess:
		stray("person", e.Person != nil)
		stray("effective", !e.Effective.IsZero())
		stray("reason", e.Reason != "")
		checkEmployeeID(bad, "employee_id", e.EmployeeID, true)
		if _, err := ParseEntitlement(e.Entitlement); err != nil {
			bad("entitlement", "%v", err)
		}
		if _, err := ParseDuration(e.Duration); err != nil {
			bad("duration", "%v", err)
		}
		checkEmployeeID(bad, "requested_by", e.RequestedBy, false)
		checkFreeText(bad, "justification", e.Justification)
	case "":
		bad("type", "is required: one of %s", typeList())
	default:
		bad("type", "want one of %s, got %q", typeList(), clip(string(e.Type)))
	}
	if len(errs) == 0 {
		return nil
	}
	return &InvalidError{Err: errors.Join(errs...)}
}

func typeList() string {
	names := make([]string, 0, 4)
	for _, t := range Types() {
		names = append(names, string(t))
	}
	return strings.Join(names, ", ")
}

// withDefaults fills what HR may leave out of a person record: an empty
// status means active.
func withDefaults(p hr.Person) hr.Person {
	if p.Status == "" {
		p.Status = hr.StatusActive
	}
	return p
}

func checkEmployeeID(bad func(string, string, ...any), field, id string, required bool) {
	switch {
	case id == "" && required:
		bad(field, "is required: an employee ID, E followed by 6 digits")
	case id != "" && !hr.ValidEmployeeID(id):
		bad(field, "must be an employee ID, E followed by 6 digits, got %q", clip(id))
	}
}

func checkFreeText(bad func(string, string, ...any), field, v string) {
	switch {
	case !utf8.ValidString(v):
		bad(field, "is not valid UTF-8")
	case len(v) > MaxTextLen:
		bad(field, "has %d bytes; at most %d are kept", len(v), MaxTextLen)
	case strings.ContainsFunc(v, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }):
		bad(field, "contains a control character")
	}
}

// ParseEntitlement reads APPLICATION/ENTITLEMENT of a temporary-access
// request. Both names must be safe in a workflow ID and an approval
// request ID (letters, digits, '.', '_' or '-').
func ParseEntitlement(s string) (policy.Ref, error) {
	if s == "" {
		return policy.Ref{}, errors.New("is required: APPLICATION/ENTITLEMENT, e.g. postgres/prod_admin")
	}
	ref, err := policy.ParseRef(s)
	if err != nil {
		return policy.Ref{}, fmt.Errorf("want APPLICATION/ENTITLEMENT, e.g. postgres/prod_admin, got %q", clip(s))
	}
	if _, _, _, err := workflows.ParseApprovalRequestID(workflows.ApprovalRequestID("x", ref.Application, ref.Entitlement)); err != nil {
		return policy.Ref{}, fmt.Errorf("%q: names are 1-128 letters, digits, '.', '_' or '-'", clip(s))
	}
	return ref, nil
}

// ParseDuration reads a temporary grant's duration: "30d", "8h", "1d12h";
// empty is zero (the policy's default). Zero or negative is refused when
// given.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := policy.ParseDuration(s)
	switch {
	case err != nil && strings.HasPrefix(strings.TrimSpace(s), "-"):
		return 0, fmt.Errorf("%q: must be positive", clip(s))
	case err != nil:
		return 0, fmt.Errorf("%q is not a duration: use e.g. 30d, 8h or 1d12h", clip(s))
	case d <= 0:
		return 0, fmt.Errorf("%q: must be positive", clip(s))
	}
	return d, nil
}

// clip shortens s for an error message, on a character boundary.
func clip(s string) string {
	const limit = 40
	if len(s) <= limit {
		return s
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
