package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// The request headers of the protocol.
const (
	HeaderTimestamp = "X-Provisio-Timestamp"
	HeaderSignature = "X-Provisio-Signature"
)

// Window is how far a request's timestamp may lie from the server's clock,
// either way. A signature is remembered for as long, so a replay inside
// the window is caught and one after it is stale.
const Window = 5 * time.Minute

// signaturePrefix names the algorithm, so another one can be added later
// without ambiguity.
const signaturePrefix = "sha256="

// The reasons Verify refuses a request. Each is safe to tell the caller:
// none reveals anything about the secret.
var (
	ErrMissingTimestamp   = errors.New("missing " + HeaderTimestamp + " header (unix seconds)")
	ErrMissingSignature   = errors.New("missing " + HeaderSignature + " header (sha256=<hex HMAC>)")
	ErrMalformedTimestamp = errors.New(HeaderTimestamp + " must be unix seconds, digits only")
	ErrMalformedSignature = errors.New(HeaderSignature + " must be sha256= followed by 64 hex digits")
	ErrBadSignature       = errors.New("signature does not match: sign timestamp + \".\" + body with the shared secret")
	ErrStale              = errors.New(HeaderTimestamp + " is more than 5 minutes old: sign again with the current time")
	ErrFuture             = errors.New(HeaderTimestamp + " is more than 5 minutes ahead: check the sender's clock")
)

// Sign returns the X-Provisio-Signature value of body sent at ts (unix
// seconds): "sha256=" and the hex HMAC-SHA256, keyed with secret, of the
// timestamp in decimal, a dot, and the body. HR integrators and tests
// sign with it.
func Sign(secret []byte, ts int64, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, strconv.FormatInt(ts, 10), body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a request's timestamp and signature headers against its
// body, with now as the server's clock, and returns the timestamp. The
// signature is checked (in constant time) before the timestamp's age, so
// only someone holding the secret learns about the server's clock.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time) (time.Time, error) {
	switch {
	case timestamp == "":
		return time.Time{}, ErrMissingTimestamp
	case signature == "":
		return time.Time{}, ErrMissingSignature
	}
	secs, ok := parseTimestamp(timestamp)
	if !ok {
		return time.Time{}, ErrMalformedTimestamp
	}
	got, ok := parseSignature(signature)
	if !ok {
		return time.Time{}, ErrMalformedSignature
	}
	if !hmac.Equal(got, mac(secret, timestamp, body)) {
		return time.Time{}, ErrBadSignature
	}
	ts := time.Unix(secs, 0)
	switch {
	case ts.Before(now.Add(-Window)):
		return ts, ErrStale
	case ts.After(now.Add(Window)):
		return ts, ErrFuture
	}
	return ts, nil
}

// parseTimestamp reads canonical decimal unix seconds: digits only, no
// sign, no leading zero, so one instant has exactly one signed form.
func parseTimestamp(s string) (int64, bool) {
	if len(s) > 12 || strings.TrimLeft(s, "0123456789") != "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

func parseSignature(s string) ([]byte, bool) {
	hexSig, ok := strings.CutPrefix(s, signaturePrefix)
	if !ok || len(hexSig) != 2*sha256.Size {
		return nil, false
	}
	b, err := hex.DecodeString(hexSig)
	return b, err == nil
}

// replayKey is how a signature is remembered: its MAC in lower-case hex,
// whatever case the sender wrote.
func replayKey(signature string) string {
	return strings.ToLower(strings.TrimPrefix(signature, signaturePrefix))
}
