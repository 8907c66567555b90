package webhook

import (
	"bytes"
	"strconv"
	"testing"
	"time"
)

// FuzzVerifyTamper signs one (timestamp, body) and presents the signature
// with another, as an attacker who captured a request would: Verify must
// accept it only when both are exactly what was signed. (FuzzVerify cannot
// check this: random signatures never match.) A signature made with
// another secret must never pass either.
func FuzzVerifyTamper(f *testing.F) {
	body := []byte(`{"type":"terminate","employee_id":"E100001"}`)
	f.Add(int64(0), body, "1767225600", body)
	f.Add(int64(0), body, "1767225600", []byte(`{"type":"terminate","employee_id":"E100002"}`))
	f.Add(int64(1), body, "1767225600", body)
	f.Add(int64(0), body, "01767225600", body)
	f.Add(int64(0), body, "1767225600 ", body)
	f.Add(int64(0), body, "17672256", []byte("00."+string(body)))
	f.Add(int64(0), []byte("00."+string(body)), "17672256", body)
	f.Add(int64(0), body, "1767225600", append(append([]byte{}, body...), ' '))
	f.Add(int64(0), body, "1767225600", append(append([]byte{}, body...), 0))
	f.Add(int64(-300), []byte{}, "1767225300", []byte(nil))
	f.Fuzz(func(t *testing.T, offset int64, signed []byte, ts string, sent []byte) {
		// Keep the signed instant inside the window, so the only reason to
		// refuse is the tampering itself.
		offset %= int64(Window / time.Second)
		at := testNow.Unix() + offset
		sig := Sign(testSecret, at, signed)
		canonical := strconv.FormatInt(at, 10)

		_, err := Verify(testSecret, ts, sig, sent, testNow)
		same := ts == canonical && bytes.Equal(signed, sent)
		switch {
		case same && err != nil:
			t.Fatalf("Verify refused what Sign made for %s: %v", ts, err)
		case !same && err == nil:
			t.Fatalf("Verify accepted a signature of (%s, %q) for (%q, %q)", canonical, signed, ts, sent)
		}
		other := Sign([]byte("another secret of 32 bytes......"), at, signed)
		if _, err := Verify(testSecret, canonical, other, signed, testNow); err == nil {
			t.Fatalf("Verify accepted a signature made with another secret")
		}
	})
}
