package workflows

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/provisio-dev/provisio/activities"
	"github.com/provisio-dev/provisio/internal/ledger"
)

// maxNoteLen bounds the note a run puts in a ledger entry: a failure can
// be long, and the ledger keeps every copy for years.
const maxNoteLen = 1000

// audit is the ledger justification of a change a run makes for a person
// in the course of event, under a policy version (empty when no policy
// decided it).
func audit(employeeID, event, policyVersion string) activities.Audit {
	return activities.Audit{EmployeeID: employeeID, PolicyVersion: policyVersion, Justification: ledger.Justification{Event: event}}
}

// withRules adds the policy rules and roles behind a grant of
// app/ent, from a plan's Reasons.
func withRules(au activities.Audit, reasons map[string][]string, app, ent string) activities.Audit {
	au.Rules = slices.Clone(reasons[app+"/"+ent])
	return au
}

// withApproval adds the approval that allowed a grant: the request, and
// who decided its last step, whose yes completed it. With several steps
// the note names every approver, in order.
func withApproval(au activities.Audit, r *ApprovalRequest) activities.Audit {
	if r == nil || len(r.Steps) == 0 {
		return au
	}
	au.ApprovalID = r.ID
	last := r.Steps[len(r.Steps)-1]
	au.Approver, au.ApprovedAt = last.DecidedBy, last.DecidedAt
	if len(r.Steps) > 1 {
		by := make([]string, len(r.Steps))
		for i, s := range r.Steps {
			by[i] = s.Kind + " " + s.DecidedBy
		}
		au.Note = ledgerNote(au.Note, "approved by "+strings.Join(by, ", "))
	}
	return au
}

// withNote adds free text (a reason, a justification) to the entry's note.
func withNote(au activities.Audit, note string) activities.Audit {
	au.Note = ledgerNote(au.Note, note)
	return au
}

// undoAudit is the justification of a compensation step that undoes a
// change made under au: the same person and policy, the compensation
// event, and why the run was undone.
func undoAudit(au activities.Audit, why string) activities.Audit {
	return withNote(audit(au.EmployeeID, ledger.EventCompensation, au.PolicyVersion), why)
}

// undoReason is the note of a run's compensation: what happened and, for
// a failure, the error.
func undoReason(what string, cause error) string {
	if cause == nil {
		return what
	}
	return fmt.Sprintf("%s: %s", what, cause.Error())
}

// ledgerNote joins two notes and caps the result at maxNoteLen.
func ledgerNote(a, b string) string {
	s := b
	if a != "" && b != "" {
		s = a + "; " + b
	} else if a != "" {
		s = a
	}
	if len(s) > maxNoteLen {
		n := maxNoteLen
		for n > 0 && !utf8.RuneStart(s[n]) {
			n-- // never cut a character in two
		}
		s = s[:n] + "..."
	}
	return s
}

// appRules are the rules behind every planned entitlement of app, sorted:
// why the person has an account there at all. planned lists the plan's
// entitlements (a slice, not the Reasons map, whose order a workflow must
// never depend on).
func appRules(reasons map[string][]string, planned []activities.GrantRef, app string) []string {
	var out []string
	for _, r := range planned {
		if r.Application == app {
			out = append(out, reasons[r.String()]...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// plannedRefs lists the entitlements of a plan: those granted at once, then
// those behind approvals, then (for a mover) those already held and kept.
func plannedRefs(grant []activities.AppAccess, approvals []activities.ApprovalItem, keep []activities.GrantRef) []activities.GrantRef {
	var out []activities.GrantRef
	for _, a := range grant {
		for _, e := range a.Entitlements {
			out = append(out, activities.GrantRef{Application: a.Application, Entitlement: e})
		}
	}
	for _, it := range approvals {
		out = append(out, activities.GrantRef{Application: it.Application, Entitlement: it.Entitlement})
	}
	return append(out, keep...)
}
