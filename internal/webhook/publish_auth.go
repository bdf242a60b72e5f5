package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/onair/onair/internal/onair"
)

// DefaultPublishAuthTimeout bounds a publish authorisation call.
const DefaultPublishAuthTimeout = 3 * time.Second

// PublishAuth is the optional publish authorisation callback, like nginx-rtmp's
// on_publish: before a publish starts (after its stream key was accepted), it POSTs
// {"channel", "addr", "app"} as JSON to URL. A 2xx answer allows the publish; any other
// answer (3xx, 4xx) refuses it. When the endpoint cannot answer (timeout, connection
// error, 5xx), FailOpen decides. The request never carries the stream key; with a
// Secret it is signed like the webhooks.
//
// Check has the signature of rtmp.Server.AuthorizePublish. The zero value (without URL)
// allows everything.
type PublishAuth struct {
	// URL is the endpoint. Empty allows every publish without a call.
	URL string
	// Secret, when set, signs the request (X-Onair-Signature, X-Onair-Timestamp).
	Secret string
	// Timeout bounds the call. Default: 3 s.
	Timeout time.Duration
	// FailOpen allows the publish when the endpoint cannot answer; otherwise it is refused.
	FailOpen bool
	// App is the "app" field of the request. Default: "live".
	App string
	// Client sends the request. Default: a client that follows no redirect.
	Client *http.Client
	// Logger receives the decisions (Info) and failures (Warn). Default: slog.Default().
	Logger *slog.Logger
	// Now returns the current time (for the signature). Default: time.Now.
	Now func() time.Time
}

// publishRequest is the body of a publish authorisation call.
type publishRequest struct {
	Channel string `json:"channel"`
	Addr    string `json:"addr"`
	App     string `json:"app"`
}

// Check asks the endpoint whether remoteAddr may publish to channel. It returns nil to
// allow, or an error with code onair.EFORBIDDEN to refuse (its message says why).
func (p *PublishAuth) Check(ctx context.Context, channel, remoteAddr string) error {
	if p.URL == "" {
		return nil
	}
	logger := p.Logger
	if logger == nil {
		logger = slog.Default()
	}
	status, err := p.call(ctx, channel, remoteAddr)
	switch {
	case err == nil && status >= 200 && status < 300:
		return nil
	case err == nil && status < 500:
		logger.Info("publish refused by callback", "channel", channel, "remote_addr", remoteAddr, "status", status)
		return onair.Errorf(onair.EFORBIDDEN, "Publish refused by the publish callback (status %d).", status)
	}
	reason := fmt.Sprintf("status %d", status)
	if err != nil {
		reason = err.Error()
	}
	if p.FailOpen {
		logger.Warn("publish callback failed, publish allowed", "channel", channel, "remote_addr", remoteAddr, "err", reason)
		return nil
	}
	logger.Warn("publish callback failed, publish refused", "channel", channel, "remote_addr", remoteAddr, "err", reason)
	return onair.Errorf(onair.EFORBIDDEN, "Publish callback unavailable (%s).", reason)
}

// call POSTs the request and returns the answer's status, or the error of a call that
// got none.
func (p *PublishAuth) call(ctx context.Context, channel, remoteAddr string) (int, error) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultPublishAuthTimeout
	}
	app := p.App
	if app == "" {
		app = "live"
	}
	body, err := json.Marshal(publishRequest{Channel: channel, Addr: remoteAddr, App: app})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(body))
	if err != nil {
		return 0, errors.New("invalid publish callback url")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "onair-publish-auth")
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	setSignature(req.Header, p.Secret, now(), body)
	client := p.Client
	if client == nil {
		client = noRedirectClient()
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return 0, errors.New("timeout")
		}
		return 0, sanitizeErr(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	resp.Body.Close()
	return resp.StatusCode, nil
}
