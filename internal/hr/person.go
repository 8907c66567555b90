package hr

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Person is one HR record. It carries no secret and is safe to place in a
// workflow input.
type Person struct {
	EmployeeID     string            `json:"employee_id"`
	GivenName      string            `json:"given_name"`
	FamilyName     string            `json:"family_name"`
	Email          string            `json:"email"`
	Department     string            `json:"department"`
	Title          string            `json:"title"`
	ManagerID      string            `json:"manager_id,omitempty"`
	Location       string            `json:"location"`
	EmploymentType string            `json:"employment_type"`
	StartDate      Date              `json:"start_date"`
	EndDate        Date              `json:"end_date,omitzero"`
	Status         string            `json:"status"`
	Attributes     map[string]string `json:"attributes,omitempty"`
}

// Employment types and statuses HR may send.
const (
	TypeEmployee   = "employee"
	TypeContractor = "contractor"
	StatusActive   = "active"
	StatusTerm     = "terminated"
)

// Limits on field sizes: an HR record larger than this is a broken feed or an
// attack, never a person.
const (
	MaxFieldLen = 256
	MaxAttrs    = 64
)

var employeeIDRe = regexp.MustCompile(`^E[0-9]{6}$`)

// ValidEmployeeID reports whether id has the HR key format (E + 6 digits).
func ValidEmployeeID(id string) bool { return employeeIDRe.MatchString(id) }

// FieldError names the field that is wrong and why.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Validate checks the record and returns every problem, each naming its field.
func (p Person) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if !ValidEmployeeID(p.EmployeeID) {
		bad("employee_id", "must be E followed by 6 digits, got %q", clip(p.EmployeeID))
	}
	for _, f := range []struct{ name, v string }{
		{"given_name", p.GivenName}, {"family_name", p.FamilyName}, {"email", p.Email},
		{"department", p.Department}, {"title", p.Title}, {"location", p.Location},
	} {
		if msg := checkText(f.v, true); msg != "" {
			bad(f.name, "%s", msg)
		}
	}
	if p.Email != "" && !validEmail(p.Email) {
		bad("email", "is not an e-mail address: %q", clip(p.Email))
	}
	if p.ManagerID != "" {
		if !ValidEmployeeID(p.ManagerID) {
			bad("manager_id", "must be E followed by 6 digits, got %q", clip(p.ManagerID))
		} else if p.ManagerID == p.EmployeeID {
			bad("manager_id", "a person cannot be their own manager")
		}
	}
	switch p.EmploymentType {
	case TypeEmployee, TypeContractor:
	default:
		bad("employment_type", "must be %q or %q, got %q", TypeEmployee, TypeContractor, clip(p.EmploymentType))
	}
	switch p.Status {
	case StatusActive, StatusTerm:
	default:
		bad("status", "must be %q or %q, got %q", StatusActive, StatusTerm, clip(p.Status))
	}
	if p.StartDate.IsZero() {
		bad("start_date", "is required (YYYY-MM-DD)")
	}
	if !p.EndDate.IsZero() && !p.StartDate.IsZero() && p.EndDate.Before(p.StartDate.Time) {
		bad("end_date", "%s is before start_date %s", p.EndDate, p.StartDate)
	}
	if len(p.Attributes) > MaxAttrs {
		bad("attributes", "at most %d extra attributes, got %d", MaxAttrs, len(p.Attributes))
	}
	// Sorted keys: Validate runs inside workflows, where the order of the
	// errors must not depend on map iteration.
	keys := slices.Sorted(maps.Keys(p.Attributes)) //workflowcheck:ignore sorted, so deterministic
	for _, k := range keys {
		v := p.Attributes[k]
		if msg := checkText(k, true); msg != "" {
			bad("attributes", "key %q %s", clip(k), msg)
		}
		if msg := checkText(v, false); msg != "" {
			// The key becomes part of the field name only when it is clean
			// text; otherwise it is quoted, so an error message never
			// carries raw control characters or invalid UTF-8.
			if checkText(k, true) == "" {
				bad("attributes."+clip(k), "%s", msg)
			} else {
				bad("attributes", "value of key %q %s", clip(k), msg)
			}
		}
	}
	return errors.Join(errs...)
}

// DisplayName is the name shown in applications.
func (p Person) DisplayName() string {
	return strings.TrimSpace(strings.TrimSpace(p.GivenName) + " " + strings.TrimSpace(p.FamilyName))
}

func checkText(v string, required bool) string {
	switch {
	case !utf8.ValidString(v):
		return "is not valid UTF-8"
	case len(v) > MaxFieldLen:
		return fmt.Sprintf("is longer than %d bytes", MaxFieldLen)
	case required && strings.TrimSpace(v) == "":
		return "is required"
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return "contains a control character"
		}
	}
	return ""
}

// emailRe accepts a plain local part and a domain of non-empty labels that
// neither start nor end with a hyphen ("a@b..com" and "a@-b.com" are not
// addresses any target application accepts).
var emailRe = regexp.MustCompile(`^[A-Za-z0-9._%+'-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}$`)

func validEmail(s string) bool { return emailRe.MatchString(s) }

// clip shortens s for an error message, cutting on a character boundary so
// that a valid string stays valid UTF-8.
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

// Date is a calendar date (no time of day, no zone) as HR sends it:
// YYYY-MM-DD. It is stored as midnight UTC.
type Date struct{ time.Time }

// DateLayout is the only date format HR records use.
const DateLayout = "2006-01-02"

// ParseDate parses YYYY-MM-DD; the empty string is the zero Date.
func ParseDate(s string) (Date, error) {
	if s == "" {
		return Date{}, nil
	}
	t, err := time.Parse(DateLayout, s)
	if err != nil {
		return Date{}, fmt.Errorf("want YYYY-MM-DD, got %q", clip(s))
	}
	if t.IsZero() {
		// 0001-01-01 is the zero Date, which means "no date": were it
		// accepted, an end date would silently vanish.
		return Date{}, fmt.Errorf("%s is not a date: leave the field empty for none", s)
	}
	return Date{t}, nil
}

// String formats the date as YYYY-MM-DD, or "" for the zero date.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return d.Format(DateLayout)
}

// MarshalJSON writes the date as "YYYY-MM-DD".
func (d Date) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// UnmarshalJSON reads "YYYY-MM-DD" or "".
func (d *Date) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*d = Date{}
		return nil
	}
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return fmt.Errorf("date must be a string YYYY-MM-DD")
	}
	v, err := ParseDate(s[1 : len(s)-1])
	if err != nil {
		return err
	}
	*d = v
	return nil
}
