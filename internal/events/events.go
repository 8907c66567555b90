// Package events turns an HR event (hire, move, terminate, temporary
// access request) into the workflow that carries it out. The CLI, the
// roster sync and the webhook all go through it, so every entry point
// validates the same way and starts the same workflow under the same
// deterministic ID.
//
// What lives here: the Event JSON (Decode), its shape checks (Validate,
// no I/O) and Starter.Start (the checks that need the server or the
// people store, then the start itself). What must not: printing, waiting
// for results, HTTP; those belong to the callers.
package events

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/provisio-dev/provisio/internal/config"
	"github.com/provisio-dev/provisio/internal/hr"
)

// Type is the kind of HR event.
type Type string

// The HR events the system accepts.
const (
	TypeHire          Type = "hire"
	TypeMove          Type = "move"
	TypeTerminate     Type = "terminate"
	TypeRequestAccess Type = "request-access"
)

// Types lists every event type, in the order documentation shows them.
func Types() []Type { return []Type{TypeHire, TypeMove, TypeTerminate, TypeRequestAccess} }

// Event is one HR event as JSON (webhook body, `-f` files). Which fields
// are required depends on Type; a field another type uses is refused.
type Event struct {
	Type Type `json:"type"`
	// Person is the full HR record of a hire or a move. An empty status
	// means active.
	Person *hr.Person `json:"person,omitempty"`
	// EmployeeID names the person of a terminate or request-access.
	EmployeeID string `json:"employee_id,omitempty"`
	// Effective is a leaver's last working day (empty: now).
	Effective hr.Date `json:"effective,omitzero"`
	// Reason is why a person leaves, kept in the history.
	Reason string `json:"reason,omitempty"`
	// Entitlement is APPLICATION/ENTITLEMENT of a temporary-access request.
	Entitlement string `json:"entitlement,omitempty"`
	// Duration of a temporary grant, e.g. 30d or 8h (empty: policy default).
	Duration string `json:"duration,omitempty"`
	// Justification of a temporary-access request.
	Justification string `json:"justification,omitempty"`
	// RequestedBy is the employee ID asking for temporary access.
	RequestedBy string `json:"requested_by,omitempty"`
}

// Subject is the employee the event is about: the person's ID for a hire
// or a move, EmployeeID otherwise.
func (e Event) Subject() string {
	if e.Person != nil {
		return e.Person.EmployeeID
	}
	return e.EmployeeID
}

// PriorityRevocation is the Temporal task priority of offboardings (1 is the
// highest; runs without one get the server's default, 3), so revocation
// goes first when joiners are queued.
const PriorityRevocation = 1

// Outcome says what Start did.
type Outcome string

// The outcomes of Start.
const (
	// OutcomeStarted: a new workflow runs.
	OutcomeStarted Outcome = "started"
	// OutcomeQueued: a move was handed to the person's sequencer, which
	// starts it after the person's earlier moves.
	OutcomeQueued Outcome = "queued"
	// OutcomeExisting: the same event already ran or runs; nothing new.
	OutcomeExisting Outcome = "existing"
	// OutcomeRescheduled: a scheduled offboarding moved to a new last day.
	OutcomeRescheduled Outcome = "rescheduled"
)

// Receipt is what Start reports; its JSON fields are stable (webhook
// responses, `sync --output json`).
type Receipt struct {
	Type       Type    `json:"type"`
	EmployeeID string  `json:"employeeId"`
	WorkflowID string  `json:"workflowId"`
	RunID      string  `json:"runId,omitempty"`
	Outcome    Outcome `json:"outcome"`
	// Detail is a sentence for people ("already in progress", ...).
	Detail string `json:"detail,omitempty"`
	URL    string `json:"url"`
	// Status is the workflow's status when the event found an existing
	// run ("running", "completed", ...; "queued" for a move that waits
	// behind the person's earlier ones).
	Status string `json:"status,omitempty"`
	// State is the run's lifecycle state (search attribute) when known.
	State string `json:"state,omitempty"`
	// AccessEnds is when a leaver's access ends (terminate only).
	AccessEnds time.Time `json:"accessEnds,omitzero"`
	// RequestID is the approval request ID of a temporary-access request,
	// for `starter approve` if the policy asks for approval.
	RequestID string `json:"requestId,omitempty"`
	// PreviousRunID is, for a queued move, the run the mover's workflow ID
	// had before (empty if none), so a caller waiting for the new run can
	// tell it from the old one.
	PreviousRunID string `json:"previousRunId,omitempty"`
}

// InvalidError is an event refused before anything started: bad fields,
// an unknown person or manager, dates in the wrong order. Err names each
// field (hr.FieldError).
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string {
	fields := e.Fields()
	if len(fields) > 1 && len(fields) == countLeaves(e.Err) {
		lines := make([]string, len(fields))
		for i, f := range fields {
			lines[i] = "  " + f.Error()
		}
		return "invalid event, nothing started:\n" + strings.Join(lines, "\n")
	}
	return "invalid event, nothing started: " + e.Err.Error()
}

func (e *InvalidError) Unwrap() error { return e.Err }

// Fields returns every field error inside the refusal, in order, so an
// HTTP response or a table can list them one by one.
func (e *InvalidError) Fields() []*hr.FieldError {
	var out []*hr.FieldError
	var walk func(error)
	walk = func(err error) {
		var fe *hr.FieldError
		switch x := err.(type) {
		case nil:
		case interface{ Unwrap() []error }:
			for _, inner := range x.Unwrap() {
				walk(inner)
			}
		default:
			if errors.As(err, &fe) {
				out = append(out, fe)
			}
		}
	}
	walk(e.Err)
	return out
}

// countLeaves counts the errors a tree of errors.Join holds.
func countLeaves(err error) int {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		n := 0
		for _, inner := range j.Unwrap() {
			n += countLeaves(inner)
		}
		return n
	}
	if err == nil {
		return 0
	}
	return 1
}

// invalid builds an InvalidError of one field.
func invalid(field, reason string) *InvalidError {
	return &InvalidError{Err: &hr.FieldError{Field: field, Reason: reason}}
}

// IsInvalid reports whether err is an InvalidError.
func IsInvalid(err error) bool {
	var ie *InvalidError
	return errors.As(err, &ie)
}

// People answers whether the system knows a person: in the synced roster,
// in the roster file, or onboarded (a reserved username).
type People interface {
	Known(ctx context.Context, employeeID string) (bool, error)
}

// Starter starts workflows for events.
type Starter struct {
	Client client.Client
	Config config.Config
	// People is asked about managers and employees; nil means only the
	// Temporal server is asked (an onboarding run exists).
	People People
	// Now is the clock for leavers' access ends; nil means time.Now.
	Now func() time.Time
}

func (s *Starter) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
