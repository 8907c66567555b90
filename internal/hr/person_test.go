package hr

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// validPerson is a record that passes Validate; tests break one field.
func validPerson() Person {
	return Person{
		EmployeeID: "E123456", GivenName: "Ada", FamilyName: "Lovelace",
		Email: "ada.lovelace@example.com", Department: "Engineering", Title: "Engineer",
		ManagerID: "E654321", Location: "London", EmploymentType: TypeEmployee,
		StartDate: mustDate("2026-03-01"), Status: StatusActive,
	}
}

func mustDate(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// fieldsOf returns the Field of every FieldError joined in err.
func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var fields []string
	for _, e := range errs {
		var fe *FieldError
		require.True(t, errors.As(e, &fe), "not a FieldError: %v", e)
		fields = append(fields, fe.Field)
	}
	return fields
}

func TestValidateAcceptsGoodRecords(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Person)
	}{
		{"as is", func(*Person) {}},
		{"no manager", func(p *Person) { p.ManagerID = "" }},
		{"contractor with end date", func(p *Person) {
			p.EmploymentType = TypeContractor
			p.EndDate = mustDate("2026-09-01")
		}},
		{"end date on start date", func(p *Person) { p.EndDate = p.StartDate }},
		{"terminated", func(p *Person) { p.Status = StatusTerm }},
		{"non-ASCII names", func(p *Person) { p.GivenName, p.FamilyName = "José", "Muñoz 山田" }},
		{"apostrophe and plus in email", func(p *Person) { p.Email = "conan.o'brien+hr@mail.example.co.uk" }},
		{"hyphenated email domain", func(p *Person) { p.Email = "a@my-corp.example" }},
		{"field of exactly 256 bytes", func(p *Person) { p.Title = strings.Repeat("x", MaxFieldLen) }},
		{"64 attributes", func(p *Person) { p.Attributes = attrs(MaxAttrs) }},
		{"empty attribute value", func(p *Person) { p.Attributes = map[string]string{"cost_center": ""} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPerson()
			tt.modify(&p)
			assert.NoError(t, p.Validate())
		})
	}
}

func attrs(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = "v"
	}
	return m
}

func TestValidateNamesEveryBadField(t *testing.T) {
	long := strings.Repeat("a", MaxFieldLen+1)
	tests := []struct {
		name   string
		modify func(*Person)
		fields []string // the fields the errors must name, in order
		reason string   // a fragment of the first error's reason
	}{
		{"empty employee id", func(p *Person) { p.EmployeeID = "" }, []string{"employee_id"}, "E followed by 6 digits"},
		{"filter injection id", func(p *Person) { p.EmployeeID = "x)(uid=*" }, []string{"employee_id"}, `"x)(uid=*"`},
		{"five digits", func(p *Person) { p.EmployeeID = "E12345" }, []string{"employee_id"}, "6 digits"},
		{"seven digits", func(p *Person) { p.EmployeeID = "E1234567" }, []string{"employee_id"}, "6 digits"},
		{"lowercase e", func(p *Person) { p.EmployeeID = "e123456" }, []string{"employee_id"}, "6 digits"},
		{"trailing newline id", func(p *Person) { p.EmployeeID = "E123456\n" }, []string{"employee_id"}, "6 digits"},
		{"non-ASCII digits", func(p *Person) { p.EmployeeID = "E١٢٣٤٥٦" }, []string{"employee_id"}, "6 digits"},
		{"empty given name", func(p *Person) { p.GivenName = "" }, []string{"given_name"}, "required"},
		{"whitespace family name", func(p *Person) { p.FamilyName = " \t " }, []string{"family_name"}, "required"},
		{"empty department", func(p *Person) { p.Department = "" }, []string{"department"}, "required"},
		{"empty title", func(p *Person) { p.Title = "" }, []string{"title"}, "required"},
		{"empty location", func(p *Person) { p.Location = "" }, []string{"location"}, "required"},
		{"newline in name", func(p *Person) { p.GivenName = "Ada\nuid=0" }, []string{"given_name"}, "control character"},
		{"NUL in title", func(p *Person) { p.Title = "Eng\x00ineer" }, []string{"title"}, "control character"},
		{"C1 control in location", func(p *Person) { p.Location = "Lon\u0085don" }, []string{"location"}, "control character"},
		{"257-byte department", func(p *Person) { p.Department = long }, []string{"department"}, "longer than 256 bytes"},
		{"invalid UTF-8 family name", func(p *Person) { p.FamilyName = "M\xfcller" }, []string{"family_name"}, "not valid UTF-8"},
		{"empty email", func(p *Person) { p.Email = "" }, []string{"email"}, "required"},
		{"email without at", func(p *Person) { p.Email = "ada.example.com" }, []string{"email"}, "not an e-mail"},
		{"email without domain dot", func(p *Person) { p.Email = "ada@localhost" }, []string{"email"}, "not an e-mail"},
		{"email with two ats", func(p *Person) { p.Email = "a@b@example.com" }, []string{"email"}, "not an e-mail"},
		{"email with space", func(p *Person) { p.Email = "ada lovelace@example.com" }, []string{"email"}, "not an e-mail"},
		{"email with empty label", func(p *Person) { p.Email = "ada@example..com" }, []string{"email"}, "not an e-mail"},
		{"email with leading hyphen label", func(p *Person) { p.Email = "ada@-example.com" }, []string{"email"}, "not an e-mail"},
		{"email with filter injection", func(p *Person) { p.Email = "*)(mail=*@example.com" }, []string{"email"}, "not an e-mail"},
		{"invalid UTF-8 email", func(p *Person) { p.Email = "\xff@example.com" }, []string{"email", "email"}, "not valid UTF-8"},
		{"own manager", func(p *Person) { p.ManagerID = p.EmployeeID }, []string{"manager_id"}, "own manager"},
		{"bad manager id", func(p *Person) { p.ManagerID = "boss" }, []string{"manager_id"}, "6 digits"},
		{"injection manager id", func(p *Person) { p.ManagerID = "*)(uid=*" }, []string{"manager_id"}, "6 digits"},
		{"unknown employment type", func(p *Person) { p.EmploymentType = "intern" }, []string{"employment_type"}, `"intern"`},
		{"empty employment type", func(p *Person) { p.EmploymentType = "" }, []string{"employment_type"}, "must be"},
		{"capitalised status", func(p *Person) { p.Status = "Active" }, []string{"status"}, `"Active"`},
		{"unknown status", func(p *Person) { p.Status = "on-leave" }, []string{"status"}, "must be"},
		{"missing start date", func(p *Person) { p.StartDate = Date{} }, []string{"start_date"}, "required"},
		{"end before start", func(p *Person) { p.EndDate = mustDate("2026-02-28") }, []string{"end_date"}, "before start_date 2026-03-01"},
		{"too many attributes", func(p *Person) { p.Attributes = attrs(MaxAttrs + 1) }, []string{"attributes"}, "at most 64"},
		{"empty attribute key", func(p *Person) { p.Attributes = map[string]string{"": "v"} }, []string{"attributes"}, "required"},
		{"control char in attribute value", func(p *Person) { p.Attributes = map[string]string{"cc": "a\rb"} }, []string{"attributes.cc"}, "control character"},
		{"long attribute value", func(p *Person) { p.Attributes = map[string]string{"cc": long} }, []string{"attributes.cc"}, "longer than"},
		{"bad key and bad value", func(p *Person) { p.Attributes = map[string]string{"k\n": "\xff"} }, []string{"attributes", "attributes"}, "control character"},
		{"several fields at once", func(p *Person) {
			p.EmployeeID, p.GivenName, p.Status = "E1", "", "x"
		}, []string{"employee_id", "given_name", "status"}, "6 digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPerson()
			tt.modify(&p)
			err := p.Validate()
			require.Error(t, err)
			assert.Equal(t, tt.fields, fieldsOf(t, err))
			var fe *FieldError
			require.True(t, errors.As(err, &fe))
			assert.Contains(t, fe.Reason, tt.reason)
			assert.True(t, strings.HasPrefix(err.Error(), tt.fields[0]+": "), "error %q does not start with its field", err)
			// Error text goes into workflow histories and logs: it must be
			// valid UTF-8 and free of raw control characters.
			assert.True(t, utf8.ValidString(err.Error()), "error is not UTF-8: %q", err)
			for _, line := range strings.Split(err.Error(), "\n") {
				assert.NotContains(t, line, "\r")
				assert.NotContains(t, line, "\x00")
			}
		})
	}
}

func TestValidateClipsLongValuesOnRuneBoundaries(t *testing.T) {
	p := validPerson()
	// 201 bytes: byte 40 falls inside a two-byte letter.
	p.EmploymentType = "x" + strings.Repeat("é", 100)
	err := p.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"x`+strings.Repeat("é", 19)+`..."`)
	assert.NotContains(t, err.Error(), `\x`, "a letter was cut in half")

	p = validPerson()
	// The key is clipped into the field name, unquoted.
	p.Attributes = map[string]string{"x" + strings.Repeat("ß", 30): "\x01"}
	err = p.Validate()
	require.Error(t, err)
	assert.Equal(t, []string{"attributes.x" + strings.Repeat("ß", 19) + "..."}, fieldsOf(t, err))
	assert.True(t, utf8.ValidString(err.Error()), "error is not UTF-8: %q", err)
}

func TestDisplayName(t *testing.T) {
	tests := []struct{ given, family, want string }{
		{"Ada", "Lovelace", "Ada Lovelace"},
		{" Ada ", " Lovelace ", "Ada Lovelace"},
		{"", "Lovelace", "Lovelace"},
		{"Ada", "", "Ada"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Person{GivenName: tt.given, FamilyName: tt.family}.DisplayName())
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "2026-03-01", want: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2024-02-29", want: time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{in: ""},
		{in: "2025-02-29", wantErr: true},
		{in: "2026-13-01", wantErr: true},
		{in: "2026-3-1", wantErr: true},
		{in: "01/03/2026", wantErr: true},
		{in: "2026-03-01T00:00:00Z", wantErr: true},
		{in: " 2026-03-01", wantErr: true},
		{in: "yesterday", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := ParseDate(tt.in)
			if tt.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "YYYY-MM-DD")
				assert.True(t, d.IsZero())
				return
			}
			require.NoError(t, err)
			assert.True(t, tt.want.Equal(d.Time), "got %v", d.Time)
			assert.Equal(t, tt.in, d.String())
		})
	}
}

func TestDateJSON(t *testing.T) {
	t.Run("round trip of a person", func(t *testing.T) {
		p := validPerson()
		p.EndDate = mustDate("2027-01-31")
		b, err := json.Marshal(p)
		require.NoError(t, err)
		assert.Contains(t, string(b), `"start_date":"2026-03-01"`)
		assert.Contains(t, string(b), `"end_date":"2027-01-31"`)
		var got Person
		require.NoError(t, json.Unmarshal(b, &got))
		assert.True(t, p.StartDate.Equal(got.StartDate.Time))
		assert.True(t, p.EndDate.Equal(got.EndDate.Time))
		assert.Equal(t, p.EmployeeID, got.EmployeeID)
	})
	t.Run("zero end date is omitted", func(t *testing.T) {
		b, err := json.Marshal(validPerson())
		require.NoError(t, err)
		assert.NotContains(t, string(b), "end_date")
		var got Person
		require.NoError(t, json.Unmarshal(b, &got))
		assert.True(t, got.EndDate.IsZero())
	})

	tests := []struct {
		name    string
		in      string
		want    string // Date.String of the result
		wantErr string
	}{
		{"date", `"2026-03-01"`, "2026-03-01", ""},
		{"empty string", `""`, "", ""},
		{"null", `null`, "", ""},
		{"number", `20260301`, "", "must be a string"},
		{"bare word", `true`, "", "must be a string"},
		{"timestamp", `"2026-03-01T10:00:00Z"`, "", "YYYY-MM-DD"},
		{"impossible day", `"2026-02-30"`, "", "YYYY-MM-DD"},
		{"object", `{"y":2026}`, "", "must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v struct {
				D Date `json:"d"`
			}
			err := json.Unmarshal([]byte(`{"d":`+tt.in+`}`), &v)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, v.D.String())
		})
	}
}
