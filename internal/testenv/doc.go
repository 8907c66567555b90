// Package testenv is what tests share to reach the real local stack: the
// server addresses from the environment (with the defaults `make stack`
// uses), a check that fails the test, never skips it, when a server is
// down, and small helpers for unique names. Only tests import it.
package testenv
