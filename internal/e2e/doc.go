// Package e2e holds the end-to-end tests of the whole system on the real
// local stack (`make stack`): a worker built by internal/app, the starter
// CLI, and checks made in the applications themselves with their own tools
// (ldapsearch, psql). It has no non-test code.
package e2e
