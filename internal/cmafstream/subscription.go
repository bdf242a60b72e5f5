package cmafstream

import "sync/atomic"

// Subscription receives the finished segments of a Stream in order, through a bounded
// buffer: when the buffer is full, segments are dropped and counted, and the Stream never
// waits. An open Subscription keeps the Stream from going idle.
type Subscription struct {
	s       *Stream
	ch      chan *Segment
	dropped atomic.Uint64
}

// Subscribe returns a Subscription to the segments finished from now on, buffering up to
// size of them (at least 1). Its channel is closed when the Stream stops, after the last
// segment.
func (s *Stream) Subscribe(size int) *Subscription {
	sub := &Subscription{s: s, ch: make(chan *Segment, max(size, 1))}
	s.subMu.Lock()
	defer s.subMu.Unlock()
	if s.subsClosed {
		close(sub.ch)
		return sub
	}
	s.subs[sub] = struct{}{}
	return sub
}

// Segments returns the channel of finished segments.
func (sub *Subscription) Segments() <-chan *Segment { return sub.ch }

// Dropped returns how many segments were dropped because the buffer was full.
func (sub *Subscription) Dropped() uint64 { return sub.dropped.Load() }

// Close ends the subscription. The channel is not closed by it: stop reading.
func (sub *Subscription) Close() {
	sub.s.subMu.Lock()
	delete(sub.s.subs, sub)
	sub.s.subMu.Unlock()
	sub.s.touch()
}

func (s *Stream) subscribers() int {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	return len(s.subs)
}

func (s *Stream) deliver(segs []*Segment) {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for sub := range s.subs {
		for _, sg := range segs {
			select {
			case sub.ch <- sg:
			default:
				sub.dropped.Add(1)
			}
		}
	}
}

func (s *Stream) closeSubscriptions() {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	s.subsClosed = true
	for sub := range s.subs {
		close(sub.ch)
	}
	clear(s.subs)
}
