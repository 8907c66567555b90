// Package verify compares what the target applications hold with what they
// should hold, and with what the access ledger says they hold, and names
// every difference: a missing, extra or duplicate account, an entitlement
// too many or too few, an account enabled that should be disabled (or the
// other way round), an account under the wrong username, and a ledger that
// disagrees with the application.
//
// What lives here: the expectation types (Person, Account), Birthright
// (what a policy plan gives without approval), Collect (every account of
// every application through the connectors), Compare and Ledger (the
// differences) and Summarize (counts per application). It reads nothing by
// itself but the connectors Collect is given, and changes nothing: callers
// decide what a person should hold (the fault tests from policy and the HR
// events they sent) and what to do about a difference.
package verify
