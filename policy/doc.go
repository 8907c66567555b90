// Package policy turns HR attributes into access through one declarative
// YAML file that security teams can read, review in a pull request and test.
//
// What lives here:
//   - the policy types and their loader (Parse, Load), which reports every
//     problem with its line and how to fix it;
//   - the birthright planner (Policy.Plan), which says for each entitlement a
//     person should hold why (which rule, through which role) and which
//     approvals it needs;
//   - the mover diff (Policy.Diff), separation-of-duties checks
//     (Policy.CheckSoD) and ad-hoc requests (Policy.Request);
//   - Watcher, which keeps the policy in force and reloads it when the file
//     changes, keeping the previous one when the new one is broken.
//
// The package is pure Go and deterministic: no clock, no network, no global
// state. Given the same file and the same person it returns the same plan,
// in the same order, so a plan can be recorded in a Temporal workflow history
// (through an activity) together with the policy version (the SHA-256 of the
// file) that produced it. It must not call connectors or Temporal; resolving
// an approver's own manager for escalation needs the HR directory and is the
// workflow's job.
//
// # The file
//
// A policy file has these top-level keys (see deployments/demo/policy.yaml
// for a commented example):
//
//	schema: 1                     # format version of the file, always 1
//	fallback_approver: E100000    # approves when nobody else can (see below)
//	defaults:                     # optional; built-in defaults shown
//	  approval:  {escalate_after: 3d, expire_after: 7d}
//	  temporary: {max_duration: 90d, remind_before: 7d, extension_needs_approval: true}
//	  leaver:    {retention: 30d, disable_fallback: flag}   # or delete
//	applications:                 # name, connector, owner, settings, entitlements,
//	                              # reconciliation: {ignore: [svc-*]} (see Application.Ignore)
//	roles:                        # named bundles of entitlements, may include roles
//	rules:                        # CEL condition -> roles and entitlements
//	separation_of_duties:         # entitlements that must not be held together
//
// Durations are Go durations ("72h", "90m") or whole days ("3d", "1d12h").
// Entitlements are referenced as "application/entitlement".
//
// # Conditions
//
// Rule conditions are CEL expressions over one variable, person, a typed
// object whose fields are employee_id, department, title, location,
// employment_type, manager_id, status, start_date, end_date (dates as
// "YYYY-MM-DD" strings, "" when absent) and attributes (map of extra HR
// attributes). A misspelt field is a load error with its line. Reading a
// missing attribute with person.attributes["x"] is an evaluation error: the
// rule then does not match and the plan carries a warning. Write
// `"x" in person.attributes && person.attributes["x"] == "42"` or
// `person.attributes[?"x"].orValue("") == "42"` to avoid it.
//
// # Approvals and fallbacks
//
// Roles and entitlements may ask for approval: none, manager, owner (the
// application's owner) or manager_then_owner. A planned item needs its
// entitlement's own approval plus the role approvals of the least demanding
// way the person qualifies for it: an approval-gated role adds nothing for
// an entitlement the person also gets from a plain rule or role.
//
// An approval step of kind manager is given to the person's manager. A
// person with no manager in HR cannot be approved that way: the step is
// given to the application owner instead, and says so in its Fallback
// field. Any step whose approver would be the person themselves (owners
// requesting their own application) or is unknown goes to the policy's
// fallback_approver, again with the reason in Fallback. If even that is the
// person, the step is marked Unresolved and the workflow must reject the
// request: nobody approves their own access. When one person would be asked
// twice in a row (a manager who owns the application), one step covers both.
//
// # Separation of duties
//
// A separation_of_duties set lists entitlements of which no person may hold
// any two at once. CheckSoD looks at the plan together with what the person
// already holds (temporary grants included); a block conflict must be
// refused, a require_approval conflict needs its named approver. Plans carry
// the conflicts among their own items.
//
// # Movers
//
// Diff compares held entitlements with a plan. It only ever revokes
// entitlements the policy declares: anything else a target system reports
// is listed as unmanaged. Temporary grants outside the plan are left to
// their own expiry.
package policy
