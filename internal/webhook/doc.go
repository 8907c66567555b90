// Package webhook is the HTTP endpoint HR systems post events to: it
// authenticates each request (HMAC-SHA256 over a timestamp and the body,
// with a shared secret), refuses replays, and hands the event to
// events.Starter, the same path the CLI and the roster sync take.
//
// Protocol: POST /v1/events with an events.Event JSON body and the headers
//
//	X-Provisio-Timestamp: <unix seconds>
//	X-Provisio-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// A timestamp more than Window away from the server's clock is refused, and
// so is a signature already seen within that window (remembered in
// PostgreSQL, so a restart or a second instance refuses it too). Answers
// are JSON: 202 with the events.Receipt, 400 for bad JSON or an invalid
// event, 401 for a bad or missing signature, a stale timestamp or a
// replay, 405 for another method, 413 for a body over 1 MiB, 503 or 500
// for trouble on the server's side (send the event again: it is
// idempotent).
//
// What must not live here: validation rules (package events) and workflow
// starts (events.Starter).
package webhook
