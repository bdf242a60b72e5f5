package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/bus"
	"github.com/onair/onair/internal/onair"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// hit is one request a receiver got.
type hit struct {
	at     time.Time
	header http.Header
	body   []byte
	p      Payload
}

// receiver is an httptest server that records requests and answers with status(n) for
// the n-th request (from 1).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	hits   []hit
	status func(n int) int
	notify chan struct{}
}

func newReceiver(t *testing.T, status func(n int) int) *receiver {
	t.Helper()
	rc := &receiver{status: status, notify: make(chan struct{}, 1000)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p Payload
		_ = json.Unmarshal(body, &p)
		rc.mu.Lock()
		rc.hits = append(rc.hits, hit{at: time.Now(), header: r.Header.Clone(), body: body, p: p})
		n := len(rc.hits)
		rc.mu.Unlock()
		st := rc.status(n)
		if st == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(st)
		rc.notify <- struct{}{}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) got() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hit(nil), rc.hits...)
}

// waitHits waits until the receiver got n requests.
func (rc *receiver) waitHits(t *testing.T, n int, timeout time.Duration) []hit {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if h := rc.got(); len(h) >= n {
			return h
		}
		select {
		case <-rc.notify:
		case <-deadline:
			t.Fatalf("got %d requests, want %d", len(rc.got()), n)
		}
	}
}

func always(status int) func(int) int { return func(int) int { return status } }

func startDispatcher(t *testing.T, d *Dispatcher) *Dispatcher {
	t.Helper()
	require.NoError(t, d.Start())
	t.Cleanup(d.Close)
	return d
}

func TestSignVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"type":"follow"}`)
	signed := func(secret string, at time.Time, b []byte) http.Header {
		h := http.Header{}
		setSignature(h, secret, at, b)
		return h
	}
	cases := []struct {
		name   string
		header http.Header
		body   []byte
		err    error
	}{
		{"valid", signed("s3cret", now, body), body, nil},
		{"tampered body", signed("s3cret", now, body), []byte(`{"type":"chat"}`), ErrBadSignature},
		{"wrong secret", signed("other", now, body), body, ErrBadSignature},
		{"stale", signed("s3cret", now.Add(-10*time.Minute), body), body, ErrStale},
		{"future", signed("s3cret", now.Add(10*time.Minute), body), body, ErrStale},
		{"missing", http.Header{}, body, ErrNoSignature},
		{"unsigned", signed("", now, body), body, ErrNoSignature},
		{"replayed timestamp", func() http.Header {
			h := signed("s3cret", now.Add(-10*time.Minute), body)
			h.Set(HeaderTimestamp, "1800000000") // a fresh timestamp on an old signature
			return h
		}(), body, ErrBadSignature},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			err := Verify("s3cret", ca.header, ca.body, 5*time.Minute, now)
			if ca.err == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ca.err)
			}
		})
	}
	require.Equal(t, "sha256=", Sign("k", 1, nil)[:7])
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"ok", Config{Endpoints: []Endpoint{{URL: "https://example.test/hook", Events: []string{EventFollow}}}}, ""},
		{"empty", Config{}, ""},
		{"bad url", Config{Endpoints: []Endpoint{{URL: "ftp://x"}}}, "webhook 0: url must be an absolute http or https url"},
		{"relative url", Config{Endpoints: []Endpoint{{URL: "/hook"}}}, "webhook 0: url must be an absolute http or https url"},
		{"bad event", Config{Endpoints: []Endpoint{{URL: "http://x", Events: []string{"stream.exploded"}}}},
			`webhook 0: unknown event "stream.exploded"`},
		{"negative", Config{QueueSize: -1}, "webhook durations, attempts and queue size must not be negative"},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			err := ca.cfg.Validate()
			if ca.err == "" {
				require.NoError(t, err)
			} else {
				require.EqualError(t, err, ca.err)
			}
		})
	}
}

func TestDispatcherEventsFromBus(t *testing.T) {
	all := newReceiver(t, always(http.StatusNoContent))
	follows := newReceiver(t, always(http.StatusOK))
	b := bus.NewLocal()
	defer b.Close()
	startDispatcher(t, &Dispatcher{
		Config: Config{Endpoints: []Endpoint{
			{URL: all.URL + "/hook?token=abc", Secret: "s3cret"},
			{URL: follows.URL, Secret: "other", Events: []string{EventFollow}},
		}},
		Bus: b,
	})
	ctx := context.Background()
	require.NoError(t, b.Publish(ctx, TopicLive, bus.Event{Type: bus.TypeLive, Channel: "alice"}))
	all.waitHits(t, 1, 5*time.Second) // the chat subscription exists once stream.started is out
	require.Eventually(t, func() bool { return b.Subscribers("chat.alice") == 1 }, 5*time.Second, 5*time.Millisecond)
	chat, _ := json.Marshal(map[string]any{"type": "message", "id": 7, "user": "bob", "text": "hi <3",
		"time": "2026-11-27T10:00:00Z"})
	require.NoError(t, b.Publish(ctx, "chat.alice", bus.Event{Type: bus.TypeChatMessage, Channel: "alice", Data: chat}))
	require.NoError(t, b.Publish(ctx, "chat.alice", bus.Event{Type: bus.TypeChatDelete, Channel: "alice", Data: []byte(`{}`)}))
	all.waitHits(t, 2, 5*time.Second)
	require.NoError(t, b.Publish(ctx, TopicFollow, bus.Event{Type: TypeFollow, Channel: "alice",
		Data: []byte(`{"follower":"bob"}`)}))
	all.waitHits(t, 3, 5*time.Second)
	require.NoError(t, b.Publish(ctx, TopicLive, bus.Event{Type: bus.TypeOffline, Channel: "alice"}))
	hits := all.waitHits(t, 4, 5*time.Second)
	require.Eventually(t, func() bool { return b.Subscribers("chat.alice") == 0 }, 5*time.Second, 5*time.Millisecond)

	types := []string{}
	for _, h := range hits {
		types = append(types, h.p.Type)
		require.Equal(t, "alice", h.p.Channel)
		require.NoError(t, Verify("s3cret", h.header, h.body, time.Minute, time.Now()), "signature of %s", h.p.Type)
		require.Equal(t, h.p.Type, h.header.Get(HeaderEvent))
		require.Equal(t, h.p.ID, h.header.Get(HeaderDelivery))
		require.Equal(t, "application/json", h.header.Get("Content-Type"))
		require.True(t, strings.HasPrefix(h.p.ID, "evt_"))
	}
	require.Equal(t, []string{EventStreamStarted, EventChatMessage, EventFollow, EventStreamStopped}, types)
	require.JSONEq(t, `{"id":7,"user":"bob","text":"hi <3","time":"2026-11-27T10:00:00Z"}`, string(hits[1].p.Data))
	require.JSONEq(t, `{"follower":"bob"}`, string(hits[2].p.Data))
	require.JSONEq(t, `{}`, string(hits[0].p.Data))

	fh := follows.waitHits(t, 1, 5*time.Second)
	time.Sleep(50 * time.Millisecond) // nothing else may come
	require.Len(t, follows.got(), 1)
	require.Equal(t, EventFollow, fh[0].p.Type)
	require.NoError(t, Verify("other", fh[0].header, fh[0].body, time.Minute, time.Now()))
}

func TestDispatcherRetries(t *testing.T) {
	// A 500, a 503 with Retry-After: 1 (capped to MaxBackoff), then 200.
	rc := newReceiver(t, func(n int) int {
		switch n {
		case 1:
			return http.StatusInternalServerError
		case 2:
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	d := startDispatcher(t, &Dispatcher{Config: Config{
		Endpoints:      []Endpoint{{URL: rc.URL, Secret: "k"}},
		InitialBackoff: 20 * time.Millisecond, MaxBackoff: 80 * time.Millisecond, MaxAttempts: 5,
	}})
	require.NoError(t, d.Send(EventFollow, "alice", map[string]string{"follower": "bob"}))
	hits := rc.waitHits(t, 3, 5*time.Second)
	require.Eventually(t, func() bool { return d.Stats()[0].Delivered == 1 }, 5*time.Second, 5*time.Millisecond)
	st := d.Stats()[0]
	require.Equal(t, uint64(0), st.Failed)
	for _, h := range hits {
		require.Equal(t, hits[0].p.ID, h.p.ID, "every attempt is the same delivery")
		require.NoError(t, Verify("k", h.header, h.body, time.Minute, time.Now()))
	}
	require.GreaterOrEqual(t, hits[1].at.Sub(hits[0].at), 10*time.Millisecond)
	gap := hits[2].at.Sub(hits[1].at)
	require.GreaterOrEqual(t, gap, 70*time.Millisecond, "Retry-After is honoured")
	require.Less(t, gap, 700*time.Millisecond, "up to MaxBackoff")
}

func TestDispatcherBackoffBounded(t *testing.T) {
	rc := newReceiver(t, always(http.StatusBadGateway))
	const maxBackoff = 60 * time.Millisecond
	d := startDispatcher(t, &Dispatcher{Config: Config{
		Endpoints:      []Endpoint{{URL: rc.URL}},
		InitialBackoff: 15 * time.Millisecond, MaxBackoff: maxBackoff, MaxAttempts: 6,
	}})
	require.NoError(t, d.Send(EventStreamStarted, "alice", nil))
	hits := rc.waitHits(t, 6, 10*time.Second)
	require.Eventually(t, func() bool { return d.Stats()[0].Failed == 1 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(3 * maxBackoff)
	require.Len(t, rc.got(), 6, "MaxAttempts bounds the attempts")
	for i := 1; i < len(hits); i++ {
		gap := hits[i].at.Sub(hits[i-1].at)
		require.Less(t, gap, maxBackoff+250*time.Millisecond, "gap %d", i)
	}
	// The waits grow: the last gaps (capped) are longer than the first (half of 15 ms at least).
	require.Greater(t, hits[5].at.Sub(hits[4].at), hits[1].at.Sub(hits[0].at)/2)

	// The schedule itself: doubling from InitialBackoff, capped, jittered in the upper half.
	for attempt, want := range map[int]time.Duration{1: 15, 2: 30, 3: 60, 4: 60, 10: 60, 100: 60} {
		want *= time.Millisecond
		for range 50 {
			b := d.backoff(attempt)
			require.GreaterOrEqual(t, b, want/2, "attempt %d", attempt)
			require.LessOrEqual(t, b, want, "attempt %d", attempt)
		}
	}
}

func TestDispatcherPermanentFailure(t *testing.T) {
	rc := newReceiver(t, always(http.StatusBadRequest))
	d := startDispatcher(t, &Dispatcher{Config: Config{
		Endpoints: []Endpoint{{URL: rc.URL}}, InitialBackoff: time.Millisecond,
	}})
	require.NoError(t, d.Send(EventStreamStopped, "alice", nil))
	rc.waitHits(t, 1, 5*time.Second)
	require.Eventually(t, func() bool { return d.Stats()[0].Failed == 1 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	require.Len(t, rc.got(), 1, "a 4xx is not retried")
}

func TestDispatcherDeadEndpointBlocksNothing(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { close(release) }) }
	defer stop()
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // hangs until the dispatcher gives up or the test ends
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer dead.Close()
	defer stop()
	healthy := newReceiver(t, always(http.StatusOK))
	d := &Dispatcher{Config: Config{
		Endpoints:   []Endpoint{{URL: dead.URL}, {URL: healthy.URL}},
		QueueSize:   4,
		Timeout:     time.Minute,
		MaxAttempts: 3,
	}}
	require.NoError(t, d.Start())

	const n = 100
	start := time.Now()
	for i := range n {
		require.NoError(t, d.Send(EventChatMessage, "alice", map[string]int{"i": i}))
	}
	require.Less(t, time.Since(start), time.Second, "Send never waits for an endpoint")
	healthy.waitHits(t, 1, 5*time.Second)
	st := d.Stats()
	require.LessOrEqual(t, st[0].Queued, 4, "the dead endpoint's queue is bounded")
	require.GreaterOrEqual(t, st[0].Dropped, uint64(n-4-1), "its overflow is dropped")
	// The healthy endpoint gets what its own queue held.
	require.Eventually(t, func() bool {
		s := d.Stats()[1]
		return s.Delivered+s.Dropped == n
	}, 10*time.Second, 5*time.Millisecond)

	closed := make(chan struct{})
	go func() {
		d.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waits for the dead endpoint")
	}
}

func TestPublishAuth(t *testing.T) {
	type got struct {
		req    publishRequest
		header http.Header
	}
	cases := []struct {
		name     string
		status   int
		delay    time.Duration
		failOpen bool
		down     bool
		code     string // "" allows
		msg      string
	}{
		{name: "allow", status: http.StatusOK},
		{name: "allow no content", status: http.StatusNoContent},
		{name: "deny", status: http.StatusForbidden, code: onair.EFORBIDDEN,
			msg: "Publish refused by the publish callback (status 403)."},
		{name: "redirect denies", status: http.StatusFound, code: onair.EFORBIDDEN,
			msg: "Publish refused by the publish callback (status 302)."},
		{name: "timeout fail closed", status: http.StatusOK, delay: time.Second, code: onair.EFORBIDDEN,
			msg: "Publish callback unavailable (timeout)."},
		{name: "timeout fail open", status: http.StatusOK, delay: time.Second, failOpen: true},
		{name: "server error fail closed", status: http.StatusInternalServerError, code: onair.EFORBIDDEN,
			msg: "Publish callback unavailable (status 500)."},
		{name: "server error fail open", status: http.StatusBadGateway, failOpen: true},
		{name: "down fail closed", down: true, code: onair.EFORBIDDEN},
		{name: "down fail open", down: true, failOpen: true},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			gotc := make(chan got, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var g got
				g.header = r.Header.Clone()
				_ = json.NewDecoder(r.Body).Decode(&g.req)
				gotc <- g
				if ca.delay > 0 {
					select {
					case <-time.After(ca.delay):
					case <-r.Context().Done():
					}
				}
				if ca.status == http.StatusFound {
					w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
				}
				w.WriteHeader(ca.status)
			}))
			defer srv.Close()
			url := srv.URL + "/auth"
			if ca.down {
				srv.Close()
			}
			pa := &PublishAuth{URL: url, Secret: "k", Timeout: 100 * time.Millisecond, FailOpen: ca.failOpen}
			start := time.Now()
			err := pa.Check(context.Background(), "alice", "203.0.113.7")
			require.Less(t, time.Since(start), 900*time.Millisecond, "the timeout bounds the call")
			if ca.code == "" {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				require.Equal(t, ca.code, onair.ErrorCode(err))
				if ca.msg != "" {
					require.Equal(t, ca.msg, onair.ErrorMessage(err))
				}
			}
			if ca.down {
				return
			}
			g := <-gotc
			require.Equal(t, publishRequest{Channel: "alice", Addr: "203.0.113.7", App: "live"}, g.req)
			require.NotEmpty(t, g.header.Get(HeaderSignature))
		})
	}
}

func TestPublishAuthSignedBody(t *testing.T) {
	var body []byte
	var header http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		header = r.Header.Clone()
	}))
	defer srv.Close()
	pa := &PublishAuth{URL: srv.URL, Secret: "k", App: "in"}
	require.NoError(t, pa.Check(context.Background(), "alice", "127.0.0.1"))
	require.NoError(t, Verify("k", header, body, time.Minute, time.Now()))
	require.JSONEq(t, `{"channel":"alice","addr":"127.0.0.1","app":"in"}`, string(body))

	require.NoError(t, (&PublishAuth{}).Check(context.Background(), "alice", "127.0.0.1"), "no URL allows")
}
