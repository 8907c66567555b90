// Command starter is the CLI for HR systems, managers and operators: HR
// starts lifecycle workflows (hire, move, terminate, request-access),
// managers and application owners answer approval requests (pending,
// approve, reject), and operators and auditors see what happened and why
// (status, plan, policy check).
package main
