package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/provisio-dev/provisio/connectors"
)

// mediaType is the SCIM media type (RFC 7644 §3.1).
const mediaType = "application/scim+json"

// maxResponse caps how much of a response body is read.
const maxResponse = 16 << 20

// maxAttempts bounds in-call retries after Retry-After, whatever the budget.
const maxAttempts = 5

// maxDetail caps the server text quoted in an error.
const maxDetail = 300

// call is one SCIM request.
type call struct {
	op     string // connector operation, for errors
	method string
	path   string // below the base URL, segments already escaped
	query  string // already encoded
	body   any    // JSON-encoded when not nil
}

// do sends c, retrying after Retry-After within the budget, and decodes a
// successful response body into out (when out is not nil and there is a
// body). Any failure is a *connectors.Error.
func (c *Client) do(ctx context.Context, req call, out any) error {
	var body []byte
	if req.body != nil {
		var err error
		if body, err = json.Marshal(req.body); err != nil {
			return connectors.Errorf(connectors.KindInvalid, c.name, req.op, err, "%s %s: encode request", req.method, req.path)
		}
	}
	target := c.base + req.path
	if req.query != "" {
		target += "?" + req.query
	}
	budget := c.maxRetryAfter
	for attempt := 1; ; attempt++ {
		hreq, err := http.NewRequestWithContext(ctx, req.method, target, bodyReader(body))
		if err != nil {
			return connectors.Errorf(connectors.KindInvalid, c.name, req.op, nil, "%s %s: cannot build request", req.method, req.path)
		}
		hreq.Header.Set("Authorization", "Bearer "+c.token)
		hreq.Header.Set("Accept", mediaType+", application/json")
		hreq.Header.Set("User-Agent", "provisio-scim-connector")
		if body != nil {
			hreq.Header.Set("Content-Type", mediaType)
		}
		resp, err := c.http.Do(hreq)
		if err != nil {
			return c.transportError(ctx, req, err)
		}
		raw, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		resp.Body.Close()
		if readErr != nil {
			return c.transportError(ctx, req, readErr)
		}
		status := resp.StatusCode
		if status >= 200 && status < 300 {
			if out == nil || len(bytes.TrimSpace(raw)) == 0 {
				return nil
			}
			if err := json.Unmarshal(raw, out); err != nil {
				return connectors.Errorf(connectors.KindUnavailable, c.name, req.op, nil,
					"%s %s: HTTP %d with a body that is not SCIM JSON", req.method, req.path, status)
			}
			return nil
		}
		if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
			wait, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
			if ok && wait <= budget && attempt < maxAttempts && fitsDeadline(ctx, wait) {
				budget -= wait
				if err := sleep(ctx, wait); err != nil {
					return c.transportError(ctx, req, err)
				}
				continue
			}
			e := c.statusError(req, status, raw)
			if ok {
				e.Message += fmt.Sprintf(" (server asks to retry after %s)", wait.Round(time.Second))
			}
			return e
		}
		return c.statusError(req, status, raw)
	}
}

func bodyReader(b []byte) io.Reader {
	if b == nil {
		return nil
	}
	return bytes.NewReader(b)
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date
// (RFC 9110 §10.2.3). A date in the past means now.
func retryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 || secs > int64(24*time.Hour/time.Second) {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(h)
	if err != nil {
		return 0, false
	}
	return max(0, t.Sub(now)), true
}

// fitsDeadline reports whether waiting d still leaves the context time to
// make the retry.
func fitsDeadline(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) > d
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// transportError classifies a failure to get a response. The *url.Error
// wrapper is dropped: it repeats the URL, which could carry a query with
// names; the cause (e.g. "connection refused") is kept.
func (c *Client) transportError(ctx context.Context, req call, err error) *connectors.Error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	kind := connectors.KindUnavailable
	var te interface{ Timeout() bool }
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &te) && te.Timeout():
		kind = connectors.KindTimeout
	case ctx.Err() != nil:
		kind = connectors.KindOf(ctx.Err())
	}
	return connectors.Errorf(kind, c.name, req.op, err, "%s %s: no response", req.method, req.path)
}

// kindOfStatus maps an HTTP error status to what the caller can do about
// it.
func kindOfStatus(status int) connectors.ErrorKind {
	switch {
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return connectors.KindPermission
	case status == http.StatusNotFound:
		return connectors.KindNotFound
	case status == http.StatusConflict, status == http.StatusPreconditionFailed:
		return connectors.KindConflict
	case status == http.StatusRequestTimeout:
		return connectors.KindTimeout
	case status == http.StatusTooManyRequests:
		return connectors.KindUnavailable
	case status == http.StatusNotImplemented:
		// The server does not support the operation at all: retrying the
		// same request cannot help.
		return connectors.KindInvalid
	case status >= 500:
		return connectors.KindUnavailable
	case status >= 400:
		return connectors.KindInvalid
	default: // an unexpected 1xx/3xx: the request did not happen
		return connectors.KindUnavailable
	}
}

// scimError is the SCIM error body (RFC 7644 §3.12). Status is not read:
// servers send it as a string or a number, and the HTTP status is the
// authority.
type scimError struct {
	ScimType string `json:"scimType"`
	Detail   string `json:"detail"`
}

// statusError builds the error for an HTTP error response, quoting the
// server's detail after taking out anything that could be the token.
func (c *Client) statusError(req call, status int, raw []byte) *connectors.Error {
	var se scimError
	_ = json.Unmarshal(raw, &se)
	detail := se.Detail
	if detail == "" && !json.Valid(raw) {
		detail = string(raw) // a proxy's plain-text or HTML error page
	}
	msg := fmt.Sprintf("%s %s: HTTP %d %s", req.method, req.path, status, http.StatusText(status))
	if se.ScimType != "" {
		msg += " (" + c.clean(se.ScimType) + ")"
	}
	if d := c.clean(detail); d != "" {
		msg += ": " + d
	}
	return connectors.Errorf(kindOfStatus(status), c.name, req.op, nil, "%s", msg)
}

// clean makes server text safe to put in an error: the token (should a
// server echo the Authorization header) is redacted, control characters
// become spaces and the length is capped.
func (c *Client) clean(s string) string {
	if c.token != "" {
		s = strings.ReplaceAll(s, c.token, "[REDACTED]")
	}
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > maxDetail {
		s = string(r[:maxDetail]) + "…"
	}
	return s
}
