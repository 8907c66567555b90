package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/provisio-dev/provisio/internal/hr"
)

// MaxEventBytes bounds an event's JSON. An HR record is a few hundred
// bytes; anything near this is a broken client or an attack.
const MaxEventBytes = 1 << 20

// ErrTooLarge is the field error (errors.Is) inside the InvalidError that
// Decode returns for input over MaxEventBytes; the webhook answers it with
// 413.
var ErrTooLarge = &hr.FieldError{Field: "body", Reason: fmt.Sprintf("is larger than %d bytes (1 MiB)", MaxEventBytes)}

// Decode reads one event from r strictly: at most MaxEventBytes, exactly
// one JSON object, no field the Event does not have. Every error is an
// *InvalidError naming the field. It checks only the JSON; Validate and
// Start check the event.
func Decode(r io.Reader) (Event, error) {
	var w wireEvent
	if err := decodeStrict(r, &w); err != nil {
		return Event{}, err
	}
	e := Event(w.eventFields)
	var errs []error
	var err error
	if e.Effective, err = hr.ParseDate(w.Effective); err != nil {
		errs = append(errs, &hr.FieldError{Field: "effective", Reason: err.Error()})
	}
	e.Person = nil
	if w.Person != nil {
		p, err := w.Person.person()
		if err != nil {
			errs = append(errs, err)
		}
		e.Person = &p
	}
	if len(errs) > 0 {
		return Event{}, &InvalidError{Err: errors.Join(errs...)}
	}
	return e, nil
}

// DecodePerson reads one HR person record (the JSON of Event.Person, as
// `hire -f person.json` takes it) with the same rules as Decode.
func DecodePerson(r io.Reader) (hr.Person, error) {
	var w wirePerson
	if err := decodeStrict(r, &w); err != nil {
		return hr.Person{}, err
	}
	p, err := w.person()
	if err != nil {
		return hr.Person{}, &InvalidError{Err: err}
	}
	return p, nil
}

// eventFields and personFields drop the methods of Event and hr.Person,
// so the wire types below decode dates as plain strings and name the
// field of a bad one (hr.Date's own error cannot say which date it is).
type (
	eventFields  Event
	personFields hr.Person
)

// wireEvent is Event as it arrives: the outer fields shadow the embedded
// ones of the same JSON name.
type wireEvent struct {
	eventFields
	Person    *wirePerson `json:"person"`
	Effective string      `json:"effective"`
}

type wirePerson struct {
	personFields
	StartDate string `json:"start_date"`
	EndDate   string `json:"end_date"`
}

func (w wirePerson) person() (hr.Person, error) {
	p := hr.Person(w.personFields)
	var errs []error
	var err error
	if p.StartDate, err = hr.ParseDate(w.StartDate); err != nil {
		errs = append(errs, &hr.FieldError{Field: "start_date", Reason: err.Error()})
	}
	if p.EndDate, err = hr.ParseDate(w.EndDate); err != nil {
		errs = append(errs, &hr.FieldError{Field: "end_date", Reason: err.Error()})
	}
	return p, errors.Join(errs...)
}

// decodeStrict reads r into v: size-limited, unknown fields refused, one
// JSON value only.
func decodeStrict(r io.Reader, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, MaxEventBytes+1))
	if err != nil {
		return fmt.Errorf("read event: %w", err)
	}
	if len(data) > MaxEventBytes {
		return &InvalidError{Err: ErrTooLarge}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return invalid("body", "is empty: want one JSON object")
	}
	// encoding/json would quietly turn each invalid byte into U+FFFD, so a
	// Latin-1 "José" would become an account named "Jos\uFFFD"; the roster
	// sync refuses such files too.
	if !utf8.Valid(data) {
		return invalid("body", fmt.Sprintf("is not valid UTF-8 (first bad byte at offset %d): send the JSON as UTF-8", invalidUTF8At(data)))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("body", "holds more than one JSON value: want exactly one object")
	}
	return nil
}

// invalidUTF8At returns the offset of the first byte of data that is not
// part of a valid UTF-8 sequence.
func invalidUTF8At(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(data)
}

// jsonError turns encoding/json's errors into a field error.
func jsonError(err error) *InvalidError {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return invalid("body", fmt.Sprintf("malformed JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: ")))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("body", "malformed JSON: it ends too early")
	case errors.As(err, &typ):
		// The path holds the Go names of the embedded wire structs
		// ("person.personFields.given_name"); the sender knows only the
		// JSON names.
		field := strings.NewReplacer("eventFields.", "", "personFields.", "").Replace(typ.Field)
		field = strings.TrimPrefix(field, "person.")
		if field == "" {
			return invalid("body", fmt.Sprintf("want a JSON object, got %s", typ.Value))
		}
		return invalid(field, fmt.Sprintf("want a JSON %s, got %s", jsonKind(typ.Type.Kind().String()), typ.Value))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return invalid(unknownFieldName(name), "unknown field: not part of an event")
	}
	return invalid("body", strings.TrimPrefix(err.Error(), "json: "))
}

// unknownFieldName names an unknown key, given as encoding/json quotes it:
// bare when it is a plain name, else still quoted (an empty key, spaces,
// escapes) and shortened, since it is whatever the sender typed.
func unknownFieldName(quoted string) string {
	key, err := strconv.Unquote(quoted)
	if err == nil && key != "" && len(key) <= 64 && !strings.ContainsFunc(key, func(r rune) bool {
		return !(r == '_' || r == '-' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		return key
	}
	return clip(quoted)
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "map", "struct":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	default:
		return "number"
	}
}
