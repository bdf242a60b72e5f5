package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Headers of a signed request.
const (
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256, keyed with the endpoint's
	// secret, of the timestamp, a '.', and the raw body.
	HeaderSignature = "X-Onair-Signature"
	// HeaderTimestamp is the signing time in Unix seconds. It is signed with the body, so
	// that a receiver that refuses old timestamps cannot be replayed an old request.
	HeaderTimestamp = "X-Onair-Timestamp"
	// HeaderEvent is the event type, HeaderDelivery the event's id (the same on every
	// attempt: receivers may use it to drop duplicates).
	HeaderEvent    = "X-Onair-Event"
	HeaderDelivery = "X-Onair-Delivery"
)

// Errors of Verify.
var (
	ErrNoSignature  = errors.New("missing signature or timestamp")
	ErrBadSignature = errors.New("signature does not match")
	ErrStale        = errors.New("timestamp outside the tolerance")
)

// Sign returns the X-Onair-Signature value of body signed at timestamp (Unix seconds).
func Sign(secret string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks the signature headers of a request against its raw body, and that its
// timestamp is within tolerance of now (0 skips that check). Receivers written in Go can
// use it as it is; others recompute HMAC-SHA256(secret, timestamp + "." + body).
func Verify(secret string, h http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	sig, ts := h.Get(HeaderSignature), h.Get(HeaderTimestamp)
	if sig == "" || ts == "" {
		return ErrNoSignature
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q", ErrNoSignature, ts)
	}
	want := Sign(secret, t, body)
	if !strings.HasPrefix(sig, "sha256=") || !hmac.Equal([]byte(sig), []byte(want)) {
		return ErrBadSignature
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(t, 0)); d > tolerance || d < -tolerance {
			return fmt.Errorf("%w: %v old", ErrStale, d.Round(time.Second))
		}
	}
	return nil
}

// setSignature adds the signature headers to a request of body.
func setSignature(h http.Header, secret string, now time.Time, body []byte) {
	ts := now.Unix()
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	if secret != "" {
		h.Set(HeaderSignature, Sign(secret, ts, body))
	}
}
