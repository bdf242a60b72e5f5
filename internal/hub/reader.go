package hub

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/onair/onair/internal/unit"
)

// Event is one item a Reader receives.
//
// A reader first receives an Event with Tracks set (the current publisher session's
// tracks), then units. After a publisher reconnects inside the grace window it receives
// another Tracks event with Discontinuity set, then the new session's units.
type Event struct {
	// Tracks, when non-nil, starts a publisher session with these tracks. Unit is nil then.
	Tracks []*unit.Track

	// Discontinuity is set on a Tracks event that follows an earlier session of the same stream.
	Discontinuity bool

	// Unit is the next unit of the current session (shared: never modify it).
	Unit *unit.Unit
}

// Reader receives a stream's events through a bounded queue. When the queue is full,
// new units are dropped (and counted) until the next key unit finds room: the reader
// skips to the next keyframe and the publisher never waits.
type Reader struct {
	stream *Stream
	kind   string
	max    int

	mu       sync.Mutex
	buf      []Event // ring buffer, grows up to max
	head     int
	n        int
	skipping bool
	ended    bool
	closed   bool
	notify   chan struct{}

	dropped     atomic.Uint64
	kindDropped *atomic.Uint64 // the registry's cumulative count for kind
}

// Kind returns the kind given to Stream.AddReader ("rtmp", "hls", ...).
func (r *Reader) Kind() string { return r.kind }

// Stream returns the stream the reader is attached to.
func (r *Reader) Stream() *Stream { return r.stream }

// Dropped returns how many units were dropped because the reader's queue was full.
func (r *Reader) Dropped() uint64 { return r.dropped.Load() }

// Queued returns the number of events waiting in the reader's queue.
func (r *Reader) Queued() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// push adds an event. resync tells whether the event is a point where a
// reader that dropped units can start again. Called with the stream lock held.
func (r *Reader) push(ev Event, resync bool) {
	r.mu.Lock()
	if r.closed || r.ended {
		r.mu.Unlock()
		return
	}
	if ev.Tracks != nil {
		if r.n == r.max {
			// A session start must not be lost: drop everything queued instead.
			r.drop(uint64(r.n))
			r.head, r.n = 0, 0
		}
		r.skipping = false
	} else {
		if r.skipping && !resync {
			r.mu.Unlock()
			r.drop(1)
			return
		}
		if r.n == r.max {
			r.skipping = true
			r.mu.Unlock()
			r.drop(1)
			return
		}
		r.skipping = false
	}
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)%len(r.buf)] = ev
	r.n++
	r.mu.Unlock()
	r.wake()
}

// drop counts n dropped units, for the reader and for its kind.
func (r *Reader) drop(n uint64) {
	r.dropped.Add(n)
	if r.kindDropped != nil {
		r.kindDropped.Add(n)
	}
}

func (r *Reader) grow() {
	size := len(r.buf) * 2
	if size == 0 {
		size = 8
	}
	if size > r.max {
		size = r.max
	}
	nb := make([]Event, size)
	for i := 0; i < r.n; i++ {
		nb[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	r.buf = nb
	r.head = 0
}

func (r *Reader) wake() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *Reader) end() {
	r.mu.Lock()
	r.ended = true
	r.mu.Unlock()
	r.wake()
}

// Read returns the next event, blocking until there is one. It returns ErrStreamEnded
// once the stream has ended and the queue is drained, ErrReaderClosed after Close, or
// the context's error.
func (r *Reader) Read(ctx context.Context) (Event, error) {
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return Event{}, ErrReaderClosed
		}
		if r.n > 0 {
			ev := r.buf[r.head]
			r.buf[r.head] = Event{}
			r.head = (r.head + 1) % len(r.buf)
			r.n--
			r.mu.Unlock()
			return ev, nil
		}
		ended := r.ended
		r.mu.Unlock()
		if ended {
			return Event{}, ErrStreamEnded
		}
		select {
		case <-r.notify:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// ReadBatch appends every queued event (at least one) to dst and returns it, blocking
// until there is one. Errors are those of Read.
func (r *Reader) ReadBatch(ctx context.Context, dst []Event) ([]Event, error) {
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return dst, ErrReaderClosed
		}
		if r.n > 0 {
			for r.n > 0 {
				dst = append(dst, r.buf[r.head])
				r.buf[r.head] = Event{}
				r.head = (r.head + 1) % len(r.buf)
				r.n--
			}
			r.head = 0
			r.shrink()
			r.mu.Unlock()
			return dst, nil
		}
		ended := r.ended
		r.mu.Unlock()
		if ended {
			return dst, ErrStreamEnded
		}
		select {
		case <-r.notify:
		case <-ctx.Done():
			return dst, ctx.Err()
		}
	}
}

// Wait returns a channel that receives when events may be available. It lets a reader
// select on other channels too; call ReadBatch after it fires.
func (r *Reader) Wait() <-chan struct{} { return r.notify }

// TryReadBatch is ReadBatch without blocking: it returns dst unchanged when nothing is queued.
func (r *Reader) TryReadBatch(dst []Event) ([]Event, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return dst, ErrReaderClosed
	}
	if r.n == 0 {
		if r.ended {
			return dst, ErrStreamEnded
		}
		return dst, nil
	}
	for r.n > 0 {
		dst = append(dst, r.buf[r.head])
		r.buf[r.head] = Event{}
		r.head = (r.head + 1) % len(r.buf)
		r.n--
	}
	r.head = 0
	r.shrink()
	return dst, nil
}

// keepEvents is the ring capacity an emptied reader keeps; a larger ring (grown by a
// GOP burst or a slow moment) is released, so that an idle reader stays small.
const keepEvents = 64

// shrink releases a large, empty ring. Called with r.mu held.
func (r *Reader) shrink() {
	if r.n == 0 && len(r.buf) > keepEvents {
		r.buf = nil
	}
}

// Close detaches the reader from its stream. It is safe to call more than once.
func (r *Reader) Close() {
	r.stream.removeReader(r)
	r.mu.Lock()
	r.closed = true
	r.buf = nil
	r.n = 0
	r.mu.Unlock()
	r.wake()
}
