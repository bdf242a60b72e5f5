package bus

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
)

// Local is the in-process Bus. The zero value is not usable: call NewLocal.
type Local struct {
	mu     sync.RWMutex
	topics map[string][]*localSub
	closed bool
}

var _ Bus = (*Local)(nil)

// NewLocal returns an empty in-process bus.
func NewLocal() *Local {
	return &Local{topics: make(map[string][]*localSub)}
}

// Publish implements Bus. Sends are non-blocking, so Publish returns after one pass over
// the topic's subscribers.
func (b *Local) Publish(ctx context.Context, topic string, ev Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrClosed
	}
	for _, s := range b.topics[topic] {
		select {
		case s.ch <- ev:
		default:
			s.dropped.Add(1)
		}
	}
	return nil
}

// Subscribe implements Bus.
func (b *Local) Subscribe(topic string, buffer int) (Subscription, error) {
	buffer = max(buffer, 1)
	s := &localSub{bus: b, topic: topic, ch: make(chan Event, buffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	b.topics[topic] = append(b.topics[topic], s)
	return s, nil
}

// Subscribers returns how many subscriptions topic has.
func (b *Local) Subscribers(topic string) int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.topics[topic])
}

// Close closes every subscription; later Publish and Subscribe calls fail with
// ErrClosed. It is safe to call more than once.
func (b *Local) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for _, subs := range b.topics {
		for _, s := range subs {
			s.closeLocked()
		}
	}
	b.topics = nil
}

// localSub is a Local subscription. Its channel is closed under the bus's write lock,
// so it is never closed while Publish (which holds the read lock) sends on it.
type localSub struct {
	bus     *Local
	topic   string
	ch      chan Event
	dropped atomic.Uint64
	closed  bool // guarded by bus.mu
}

func (s *localSub) C() <-chan Event { return s.ch }

func (s *localSub) Dropped() uint64 { return s.dropped.Load() }

func (s *localSub) Close() {
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.closed {
		return
	}
	s.closeLocked()
	subs := b.topics[s.topic]
	if i := slices.Index(subs, s); i >= 0 {
		subs = slices.Delete(subs, i, i+1)
	}
	if len(subs) == 0 {
		delete(b.topics, s.topic)
	} else {
		b.topics[s.topic] = subs
	}
}

func (s *localSub) closeLocked() {
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}
