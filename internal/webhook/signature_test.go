package webhook

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	testSecret = []byte("0123456789abcdef0123456789abcdef")
	testNow    = time.Unix(1767225600, 0) // 2026-01-01T00:00:00Z
)

// TestSignKnownVector pins the signature to what the README's openssl
// example computes:
//
//	printf '%s' '1767225600.{"type":"terminate","employee_id":"E100001"}' |
//	  openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef
func TestSignKnownVector(t *testing.T) {
	got := Sign(testSecret, 1767225600, []byte(`{"type":"terminate","employee_id":"E100001"}`))
	assert.Equal(t, "sha256=b1894799a37d7fa4d8b1a88b81f13d73db64b9343a7798137f37145b8163b641", got)
}

func TestVerify(t *testing.T) {
	body := []byte(`{"type":"terminate","employee_id":"E100001"}`)
	ts := strconv.FormatInt(testNow.Unix(), 10)
	good := Sign(testSecret, testNow.Unix(), body)
	at := func(d time.Duration) (string, string) {
		s := testNow.Add(d).Unix()
		return strconv.FormatInt(s, 10), Sign(testSecret, s, body)
	}
	oldTS, oldSig := at(-Window - time.Second)
	edgeTS, edgeSig := at(-Window)
	futureTS, futureSig := at(Window + time.Second)
	tests := []struct {
		name      string
		ts, sig   string
		body      []byte
		secret    []byte
		wantError error
	}{
		{"good", ts, good, body, testSecret, nil},
		{"upper-case hex", ts, "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), body, testSecret, nil},
		{"at the edge of the window", edgeTS, edgeSig, body, testSecret, nil},
		{"missing timestamp", "", good, body, testSecret, ErrMissingTimestamp},
		{"missing signature", ts, "", body, testSecret, ErrMissingSignature},
		{"timestamp in milliseconds", ts + "000", good, body, testSecret, ErrMalformedTimestamp},
		{"timestamp with a sign", "+" + ts, good, body, testSecret, ErrMalformedTimestamp},
		{"timestamp with a leading zero", "0" + ts, good, body, testSecret, ErrMalformedTimestamp},
		{"timestamp as a date", "2026-01-01T00:00:00Z", good, body, testSecret, ErrMalformedTimestamp},
		{"no algorithm", ts, strings.TrimPrefix(good, "sha256="), body, testSecret, ErrMalformedSignature},
		{"other algorithm", ts, "sha1=" + strings.TrimPrefix(good, "sha256="), body, testSecret, ErrMalformedSignature},
		{"short signature", ts, good[:len(good)-2], body, testSecret, ErrMalformedSignature},
		{"not hex", ts, good[:len(good)-1] + "g", body, testSecret, ErrMalformedSignature},
		{"other body", ts, good, []byte(`{"type":"terminate","employee_id":"E100002"}`), testSecret, ErrBadSignature},
		{"other secret", ts, good, body, []byte("another secret of 32 bytes......"), ErrBadSignature},
		{"one bit off", ts, good[:len(good)-1] + flip(good[len(good)-1]), body, testSecret, ErrBadSignature},
		{"stale", oldTS, oldSig, body, testSecret, ErrStale},
		{"future", futureTS, futureSig, body, testSecret, ErrFuture},
		{"stale and badly signed", oldTS, good, body, testSecret, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(tt.secret, tt.ts, tt.sig, tt.body, testNow)
			if tt.wantError == nil {
				require.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.wantError)
		})
	}
}

func flip(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}

// FuzzVerify checks that Verify never panics, accepts only what Sign
// produced for a timestamp inside the window, and always accepts what
// Sign produced for one.
func FuzzVerify(f *testing.F) {
	body := []byte(`{"type":"hire","person":{"employee_id":"E100001"}}`)
	f.Add("1767225600", Sign(testSecret, 1767225600, body), body)
	f.Add("1767225600", "sha256=", []byte{})
	f.Add("", "", []byte(nil))
	f.Add("99999999999999999999", "sha256=00", []byte("{}"))
	f.Add("-1", Sign(testSecret, -1, nil), []byte(nil))
	f.Add("1767225000", Sign(testSecret, 1767225000, []byte("x")), []byte("x"))
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		got, err := Verify(testSecret, ts, sig, body, testNow)
		if err == nil {
			secs, perr := strconv.ParseInt(ts, 10, 64)
			require.NoError(t, perr, "accepted a timestamp that is not a number: %q", ts)
			require.Equal(t, strings.ToLower(Sign(testSecret, secs, body)), strings.ToLower(sig), "accepted a signature Sign did not make")
			require.Equal(t, time.Unix(secs, 0), got)
			require.LessOrEqual(t, testNow.Sub(got).Abs(), Window)
		}
		// The body signed now always passes.
		now := strconv.FormatInt(testNow.Unix(), 10)
		_, err = Verify(testSecret, now, Sign(testSecret, testNow.Unix(), body), body, testNow)
		require.NoError(t, err)
	})
}
