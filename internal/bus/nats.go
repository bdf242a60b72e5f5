package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// DefaultSubjectPrefix is the NATS subject prefix of bus topics.
const DefaultSubjectPrefix = "onair.bus"

// NATS is the Bus across nodes: events go to this node's subscribers directly (the
// node-local fast path) and to the other nodes through NATS core subjects (at most once,
// like Local: a node that is disconnected misses what is published meanwhile). The
// connection echoes nothing back (nats.NoEcho), so a node never receives its own event
// twice. The zero value is not usable: call NewNATS.
type NATS struct {
	nc     *nats.Conn
	prefix string
	logger *slog.Logger

	all *Local // every event, from this node and the others
	own *Local // only the events published on this node (see Own)

	mu     sync.Mutex
	subs   map[string]*natsTopic // by topic
	closed bool
}

type natsTopic struct {
	sub  *nats.Subscription
	refs int
}

var _ Bus = (*NATS)(nil)

// NATSOptions configures NewNATS.
type NATSOptions struct {
	// Name is the connection's name on the NATS server (the node name, say).
	Name string
	// SubjectPrefix prefixes every subject. Default: DefaultSubjectPrefix.
	SubjectPrefix string
	// Logger receives connection state changes. Default: slog.Default().
	Logger *slog.Logger
}

// NewNATS connects to the NATS server(s) at url (comma-separated) and returns a bus on
// that connection. The connection reconnects for ever; subscriptions survive reconnects.
// The caller owns the bus and closes it with Close.
func NewNATS(url string, o NATSOptions) (*NATS, error) {
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = DefaultSubjectPrefix
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	b := &NATS{
		prefix: o.SubjectPrefix,
		logger: o.Logger,
		all:    NewLocal(),
		own:    NewLocal(),
		subs:   make(map[string]*natsTopic),
	}
	nc, err := Connect(url, o.Name, o.Logger)
	if err != nil {
		return nil, err
	}
	b.nc = nc
	return b, nil
}

// Connect opens a NATS connection the way onair uses it: named, reconnecting for ever,
// without echo, and logging its state changes. The error never shows credentials.
func Connect(url, name string, logger *slog.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		// Every node is back within about half a second of the server, well inside the
		// cluster directory's 3 s dead-node timeout.
		nats.ReconnectWait(500*time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("nats reconnected", "server", c.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			subj := ""
			if s != nil {
				subj = s.Subject
			}
			logger.Warn("nats error", "subject", subj, "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", redactURLError(err, url))
	}
	return nc, nil
}

// redactURLError keeps a URL's password out of an error message.
func redactURLError(err error, url string) error {
	msg := err.Error()
	for _, u := range strings.Split(url, ",") {
		if i := strings.Index(u, "://"); i >= 0 {
			if at := strings.LastIndex(u, "@"); at > i {
				msg = strings.ReplaceAll(msg, u[i+3:at], "REDACTED")
			}
		}
	}
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// Conn returns the bus's NATS connection (the cluster directory shares it).
func (b *NATS) Conn() *nats.Conn { return b.nc }

// Subject returns the NATS subject of a topic: the prefix, then the topic's
// dot-separated tokens with every byte outside [A-Za-z0-9_-] written as ~XX (hex), and an
// empty token as ~. So no topic can reach a wildcard or another prefix.
func (b *NATS) Subject(topic string) string {
	return subject(b.prefix, topic)
}

func subject(prefix, topic string) string {
	var sb strings.Builder
	sb.WriteString(prefix)
	for tok := range strings.SplitSeq(topic, ".") {
		sb.WriteByte('.')
		if tok == "" {
			sb.WriteByte('~')
			continue
		}
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
				sb.WriteByte(c)
			} else {
				fmt.Fprintf(&sb, "~%02X", c)
			}
		}
	}
	return sb.String()
}

// Publish implements Bus: the event goes to this node's subscribers at once and to NATS,
// whose client buffers it without blocking (also while reconnecting, up to its
// reconnect buffer; beyond that the error is returned).
func (b *NATS) Publish(ctx context.Context, topic string, ev Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := b.all.Publish(ctx, topic, ev); err != nil {
		return err
	}
	_ = b.own.Publish(ctx, topic, ev) // closed together with all
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	if err := b.nc.Publish(b.Subject(topic), data); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return ErrClosed
		}
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// Subscribe implements Bus. The node subscribes to the topic's subject on NATS while it
// has at least one subscriber to it.
func (b *NATS) Subscribe(topic string, buffer int) (Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	s, err := b.all.Subscribe(topic, buffer)
	if err != nil {
		return nil, err
	}
	t := b.subs[topic]
	if t == nil {
		ns, err := b.nc.Subscribe(b.Subject(topic), func(m *nats.Msg) { b.deliver(topic, m) })
		if err != nil {
			s.Close()
			if errors.Is(err, nats.ErrConnectionClosed) {
				return nil, ErrClosed
			}
			return nil, fmt.Errorf("subscribe %s: %w", topic, err)
		}
		// The client's own buffer holds what arrives while deliver runs; deliver never
		// blocks, so this only bounds a burst.
		_ = ns.SetPendingLimits(65536, 64<<20)
		t = &natsTopic{sub: ns}
		b.subs[topic] = t
	}
	t.refs++
	return &natsSub{Subscription: s, bus: b, topic: topic}, nil
}

// deliver hands an event from another node to this node's subscribers.
func (b *NATS) deliver(topic string, m *nats.Msg) {
	var ev Event
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		b.logger.Warn("bad bus event from nats", "topic", topic, "err", err)
		return
	}
	_ = b.all.Publish(context.Background(), topic, ev) // ErrClosed only while closing
}

func (b *NATS) unref(topic string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.subs[topic]
	if t == nil {
		return
	}
	if t.refs--; t.refs == 0 {
		delete(b.subs, topic)
		if !b.closed {
			_ = t.sub.Unsubscribe()
		}
	}
}

// Own returns a Bus view that subscribes only to the events published on this node
// (publishing through it publishes cluster-wide). Consumers that must act once per event
// in the whole cluster, such as webhooks, subscribe there: every event is published on
// exactly one node.
func (b *NATS) Own() Bus { return ownBus{b} }

type ownBus struct{ b *NATS }

func (o ownBus) Publish(ctx context.Context, topic string, ev Event) error {
	return o.b.Publish(ctx, topic, ev)
}

func (o ownBus) Subscribe(topic string, buffer int) (Subscription, error) {
	return o.b.own.Subscribe(topic, buffer)
}

// Close drains nothing: it closes every subscription and the NATS connection. Later
// Publish and Subscribe calls fail with ErrClosed. It is safe to call more than once.
func (b *NATS) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	b.mu.Unlock()
	b.nc.Close() // stops the subscription callbacks first
	b.all.Close()
	b.own.Close()
}

// natsSub releases the topic's NATS subscription with its last subscriber.
type natsSub struct {
	Subscription
	bus   *NATS
	topic string
	once  sync.Once
}

func (s *natsSub) Close() {
	s.Subscription.Close()
	s.once.Do(func() { s.bus.unref(s.topic) })
}
