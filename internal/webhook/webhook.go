// Package webhook tells other services what happens on the site, as nginx-rtmp's
// on_publish/on_done and Owncast's webhooks do: stream started and stopped, new follower,
// chat message. Events come from the bus; each configured endpoint gets a signed JSON
// POST, retried with exponential backoff, through its own bounded queue, so a slow or
// dead endpoint delays and drops only its own deliveries and never blocks anything else.
//
// PublishAuth is the optional publish authorisation callback: an HTTP endpoint that
// allows or refuses each publish before it starts.
//
// No request ever carries a stream key.
package webhook

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onair/onair/internal/bus"
)

// Event types.
const (
	EventStreamStarted = "stream.started"
	EventStreamStopped = "stream.stopped"
	EventFollow        = "follow"
	EventChatMessage   = "chat.message"
)

// Events lists every event type.
var Events = []string{EventStreamStarted, EventStreamStopped, EventFollow, EventChatMessage}

// Bus topics read by the Dispatcher.
const (
	// TopicLive carries bus.TypeLive and bus.TypeOffline events.
	TopicLive = "live"
	// TopicFollow carries events of type TypeFollow, whose Data is {"follower": "bob"}.
	TopicFollow = "follow"
	TypeFollow  = "follow"
	// chatTopicPrefix prefixes a channel's chat topic (chat.TopicPrefix).
	chatTopicPrefix = "chat."
)

// Defaults of the Config fields.
const (
	DefaultTimeout        = 10 * time.Second
	DefaultMaxAttempts    = 5
	DefaultInitialBackoff = time.Second
	DefaultMaxBackoff     = time.Minute
	DefaultQueueSize      = 256
	// maxResponseBody bounds what is read of a response (to reuse the connection).
	maxResponseBody = 64 << 10
	// dropLogEvery bounds how often an endpoint's dropped events are logged.
	dropLogEvery = time.Minute
)

// Endpoint is one receiver of webhooks.
type Endpoint struct {
	// URL is where events are POSTed (http or https).
	URL string
	// Secret keys the HMAC-SHA256 signature (X-Onair-Signature). Empty sends unsigned
	// requests (only the timestamp header).
	Secret string
	// Events are the event types sent to the endpoint; empty sends all.
	Events []string
}

// Config is the site's webhook configuration, filled from the config file.
type Config struct {
	// Endpoints receive the events.
	Endpoints []Endpoint
	// Timeout bounds one delivery attempt. Default: 10 s.
	Timeout time.Duration
	// MaxAttempts bounds the attempts of one delivery. Default: 5.
	MaxAttempts int
	// InitialBackoff is the wait after the first failed attempt; each further wait doubles,
	// up to MaxBackoff (a Retry-After answer is honoured up to MaxBackoff too). Waits are
	// jittered between half and all of that. Defaults: 1 s and 1 min.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// QueueSize bounds the events waiting for each endpoint; when it is full, new events
	// are dropped for that endpoint (and counted). Default: 256.
	QueueSize int
}

// Validate checks the configuration, reporting every bad field at once.
func (c Config) Validate() error {
	var errs []error
	for i, e := range c.Endpoints {
		u, err := url.Parse(e.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("webhook %d: url must be an absolute http or https url", i))
		}
		for _, ev := range e.Events {
			if !known(ev) {
				errs = append(errs, fmt.Errorf("webhook %d: unknown event %q", i, ev))
			}
		}
	}
	if c.Timeout < 0 || c.MaxAttempts < 0 || c.InitialBackoff < 0 || c.MaxBackoff < 0 || c.QueueSize < 0 {
		errs = append(errs, errors.New("webhook durations, attempts and queue size must not be negative"))
	}
	return errors.Join(errs...)
}

func known(ev string) bool {
	for _, e := range Events {
		if e == ev {
			return true
		}
	}
	return false
}

// Payload is the JSON body of a webhook.
type Payload struct {
	// ID identifies the event; it is the same on every attempt (X-Onair-Delivery too).
	ID string `json:"id"`
	// Type is one of the Event constants.
	Type string `json:"type"`
	// Time is when the event happened.
	Time time.Time `json:"time"`
	// Channel is the channel (username) the event is about.
	Channel string `json:"channel"`
	// Data depends on Type: {} for stream.started and stream.stopped, {"follower"} for
	// follow, {"id", "user", "text", "time"} for chat.message.
	Data json.RawMessage `json:"data"`
}

// Dispatcher delivers events to the configured endpoints. Set its fields, call Start,
// and Close it.
type Dispatcher struct {
	Config

	// Bus, when set, is where events come from: TopicLive, TopicFollow, and the chat topic
	// of each channel while it is live (chat messages of offline channels are not sent).
	Bus bus.Bus

	// Client sends the requests. Default: a client that follows no redirect (a redirect
	// is a failed delivery: the signed body never goes to another URL).
	Client *http.Client

	// Logger receives failures and drops (Warn) and deliveries (Debug). Default: slog.Default().
	Logger *slog.Logger

	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	// UserAgent is sent with every request. Default: "onair-webhook".
	UserAgent string

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	workers []*worker
	wants   map[string]bool // event types some endpoint wants

	chatMu   sync.Mutex
	chatSubs map[string]bus.Subscription
}

// worker delivers the events of one endpoint, one at a time, in order.
type worker struct {
	d     *Dispatcher
	ep    Endpoint
	name  string // the URL without query or credentials, for logs
	queue chan *delivery

	delivered atomic.Uint64
	failed    atomic.Uint64
	dropped   atomic.Uint64
	lastDrop  atomic.Int64 // unix nanoseconds of the last drop log
}

type delivery struct {
	typ  string
	id   string
	body []byte
}

// EndpointStats counts an endpoint's deliveries.
type EndpointStats struct {
	// URL is the endpoint's URL without query or credentials.
	URL       string
	Queued    int
	Delivered uint64
	Failed    uint64
	Dropped   uint64
}

// Start validates the configuration, applies the defaults, and starts one worker per
// endpoint and, with a Bus, the bus readers.
func (d *Dispatcher) Start() error {
	if err := d.Validate(); err != nil {
		return err
	}
	if d.Timeout == 0 {
		d.Timeout = DefaultTimeout
	}
	if d.MaxAttempts == 0 {
		d.MaxAttempts = DefaultMaxAttempts
	}
	if d.InitialBackoff == 0 {
		d.InitialBackoff = DefaultInitialBackoff
	}
	if d.MaxBackoff == 0 {
		d.MaxBackoff = DefaultMaxBackoff
	}
	d.MaxBackoff = max(d.MaxBackoff, d.InitialBackoff)
	if d.QueueSize == 0 {
		d.QueueSize = DefaultQueueSize
	}
	if d.Client == nil {
		d.Client = noRedirectClient()
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.UserAgent == "" {
		d.UserAgent = "onair-webhook"
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.wants = make(map[string]bool)
	d.chatSubs = make(map[string]bus.Subscription)
	for _, ep := range d.Endpoints {
		w := &worker{d: d, ep: ep, name: redactURL(ep.URL), queue: make(chan *delivery, d.QueueSize)}
		d.workers = append(d.workers, w)
		evs := ep.Events
		if len(evs) == 0 {
			evs = Events
		}
		for _, ev := range evs {
			d.wants[ev] = true
		}
	}
	for _, w := range d.workers {
		d.wg.Add(1)
		go w.run()
	}
	if d.Bus != nil && len(d.workers) > 0 {
		if err := d.subscribe(); err != nil {
			d.Close()
			return err
		}
	}
	return nil
}

// Close stops the bus readers and the workers. Deliveries still queued are abandoned,
// and one in flight is cancelled.
func (d *Dispatcher) Close() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.chatMu.Lock()
	for ch, sub := range d.chatSubs {
		sub.Close()
		delete(d.chatSubs, ch)
	}
	d.chatMu.Unlock()
	d.wg.Wait()
}

// Stats returns the counters of every endpoint, in configuration order.
func (d *Dispatcher) Stats() []EndpointStats {
	out := make([]EndpointStats, len(d.workers))
	for i, w := range d.workers {
		out[i] = EndpointStats{
			URL: w.name, Queued: len(w.queue),
			Delivered: w.delivered.Load(), Failed: w.failed.Load(), Dropped: w.dropped.Load(),
		}
	}
	return out
}

// Send queues an event for every endpoint that wants its type, without blocking: an
// endpoint whose queue is full drops it. data is marshalled to JSON (nil gives {}).
func (d *Dispatcher) Send(typ, channel string, data any) error {
	raw := json.RawMessage("{}")
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return fmt.Errorf("marshal webhook data: %w", err)
		}
		raw = b
	}
	p := Payload{ID: newID(), Type: typ, Time: d.Now().UTC(), Channel: channel, Data: raw}
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("marshal webhook: %w", err)
	}
	dl := &delivery{typ: typ, id: p.ID, body: body}
	for _, w := range d.workers {
		if w.wants(typ) {
			w.enqueue(dl)
		}
	}
	return nil
}

func (w *worker) wants(typ string) bool {
	if len(w.ep.Events) == 0 {
		return true
	}
	for _, e := range w.ep.Events {
		if e == typ {
			return true
		}
	}
	return false
}

func (w *worker) enqueue(dl *delivery) {
	select {
	case w.queue <- dl:
	default:
		n := w.dropped.Add(1)
		now := w.d.Now().UnixNano()
		last := w.lastDrop.Load()
		if now-last >= int64(dropLogEvery) && w.lastDrop.CompareAndSwap(last, now) {
			w.d.Logger.Warn("webhook queue full, event dropped", "url", w.name, "event", dl.typ, "dropped", n)
		}
	}
}

func (w *worker) run() {
	defer w.d.wg.Done()
	for {
		select {
		case <-w.d.ctx.Done():
			return
		case dl := <-w.queue:
			w.deliver(dl)
		}
	}
}

// deliver POSTs dl until it succeeds, fails for good, or MaxAttempts are spent.
func (w *worker) deliver(dl *delivery) {
	d := w.d
	for attempt := 1; ; attempt++ {
		status, retryAfter, err := w.post(dl)
		if err == nil && status >= 200 && status < 300 {
			w.delivered.Add(1)
			d.Logger.Debug("webhook delivered", "url", w.name, "event", dl.typ, "attempts", attempt)
			return
		}
		if d.ctx.Err() != nil {
			return
		}
		reason := fmt.Sprintf("status %d", status)
		if err != nil {
			reason = err.Error()
		}
		if err == nil && !retryable(status) {
			w.failed.Add(1)
			d.Logger.Warn("webhook refused", "url", w.name, "event", dl.typ, "status", status)
			return
		}
		if attempt >= d.MaxAttempts {
			w.failed.Add(1)
			d.Logger.Warn("webhook failed", "url", w.name, "event", dl.typ, "attempts", attempt, "err", reason)
			return
		}
		wait := d.backoff(attempt)
		if retryAfter > 0 {
			wait = min(retryAfter, d.MaxBackoff)
		}
		d.Logger.Debug("webhook retry", "url", w.name, "event", dl.typ, "attempt", attempt, "err", reason, "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-d.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// retryable reports whether a failed status may succeed later: server errors, 408, 429.
func retryable(status int) bool {
	return status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests
}

// backoff returns the wait after the attempt-th failure: InitialBackoff doubled per
// attempt, capped at MaxBackoff, jittered within its upper half.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	b := d.InitialBackoff
	for i := 1; i < attempt && b < d.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.MaxBackoff)
	half := b / 2
	if half <= 0 {
		return b
	}
	return half + rand.N(half+1)
}

// post makes one attempt. It returns the status, the Retry-After delay (0 when absent),
// and the error of a request that got no answer.
func (w *worker) post(dl *delivery) (int, time.Duration, error) {
	d := w.d
	ctx, cancel := context.WithTimeout(d.ctx, d.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.ep.URL, bytes.NewReader(dl.body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", d.UserAgent)
	req.Header.Set(HeaderEvent, dl.typ)
	req.Header.Set(HeaderDelivery, dl.id)
	setSignature(req.Header, w.ep.Secret, d.Now(), dl.body)
	resp, err := d.Client.Do(req)
	if err != nil {
		return 0, 0, sanitizeErr(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	resp.Body.Close()
	var retryAfter time.Duration
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			retryAfter = time.Duration(n) * time.Second
		}
	}
	return resp.StatusCode, retryAfter, nil
}

// sanitizeErr drops the URL from a client error (it may carry a token in its query).
func sanitizeErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redactURL returns u without credentials, query or fragment.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "invalid url"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

func noRedirectClient() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func newID() string {
	var b [12]byte
	_, _ = crand.Read(b[:]) // crypto/rand.Read never fails
	return "evt_" + hex.EncodeToString(b[:])
}

// subscribe starts the bus readers.
func (d *Dispatcher) subscribe() error {
	if d.wants[EventStreamStarted] || d.wants[EventStreamStopped] || d.wants[EventChatMessage] {
		sub, err := d.Bus.Subscribe(TopicLive, 256)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", TopicLive, err)
		}
		d.wg.Add(1)
		go d.readLive(sub)
	}
	if d.wants[EventFollow] {
		sub, err := d.Bus.Subscribe(TopicFollow, 256)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", TopicFollow, err)
		}
		d.wg.Add(1)
		go d.readFollows(sub)
	}
	return nil
}

func (d *Dispatcher) readLive(sub bus.Subscription) {
	defer d.wg.Done()
	defer sub.Close()
	for {
		select {
		case <-d.ctx.Done():
			return
		case ev, ok := <-sub.C():
			if !ok {
				return
			}
			switch ev.Type {
			case bus.TypeLive:
				d.watchChat(ev.Channel)
				if d.wants[EventStreamStarted] {
					d.sendLogged(EventStreamStarted, ev.Channel, nil)
				}
			case bus.TypeOffline:
				d.unwatchChat(ev.Channel)
				if d.wants[EventStreamStopped] {
					d.sendLogged(EventStreamStopped, ev.Channel, nil)
				}
			}
		}
	}
}

func (d *Dispatcher) readFollows(sub bus.Subscription) {
	defer d.wg.Done()
	defer sub.Close()
	for {
		select {
		case <-d.ctx.Done():
			return
		case ev, ok := <-sub.C():
			if !ok {
				return
			}
			if ev.Type != TypeFollow {
				continue
			}
			var f struct {
				Follower string `json:"follower"`
			}
			if err := json.Unmarshal(ev.Data, &f); err != nil || f.Follower == "" {
				d.Logger.Warn("follow event without follower", "channel", ev.Channel)
				continue
			}
			d.sendLogged(EventFollow, ev.Channel, map[string]string{"follower": f.Follower})
		}
	}
}

// watchChat subscribes to a live channel's chat.
func (d *Dispatcher) watchChat(channel string) {
	if !d.wants[EventChatMessage] || channel == "" {
		return
	}
	d.chatMu.Lock()
	defer d.chatMu.Unlock()
	if d.ctx.Err() != nil || d.chatSubs[channel] != nil {
		return
	}
	sub, err := d.Bus.Subscribe(chatTopicPrefix+channel, 256)
	if err != nil {
		if !errors.Is(err, bus.ErrClosed) {
			d.Logger.Warn("subscribe chat", "channel", channel, "err", err)
		}
		return
	}
	d.chatSubs[channel] = sub
	d.wg.Add(1)
	go d.readChat(channel, sub)
}

func (d *Dispatcher) unwatchChat(channel string) {
	d.chatMu.Lock()
	sub := d.chatSubs[channel]
	delete(d.chatSubs, channel)
	d.chatMu.Unlock()
	if sub != nil {
		sub.Close()
	}
}

// chatMessage is the chat frame of a bus.TypeChatMessage event.
type chatMessage struct {
	ID   int64     `json:"id"`
	User string    `json:"user"`
	Text string    `json:"text"`
	Time time.Time `json:"time"`
}

func (d *Dispatcher) readChat(channel string, sub bus.Subscription) {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case ev, ok := <-sub.C():
			if !ok {
				return
			}
			if ev.Type != bus.TypeChatMessage {
				continue
			}
			var m chatMessage
			if err := json.Unmarshal(ev.Data, &m); err != nil {
				continue
			}
			d.sendLogged(EventChatMessage, channel, m)
		}
	}
}

func (d *Dispatcher) sendLogged(typ, channel string, data any) {
	if err := d.Send(typ, channel, data); err != nil {
		d.Logger.Warn("webhook not sent", "event", typ, "channel", channel, "err", err)
	}
}
