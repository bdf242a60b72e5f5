package chat

import (
	"sync"
	"time"
)

// sweepInterval is how often idle buckets are forgotten.
const sweepInterval = time.Minute

// limiter is a token bucket per user: rate tokens per second, up to burst.
type limiter struct {
	rate  float64
	burst float64

	mu        sync.Mutex
	buckets   map[int64]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), buckets: make(map[int64]*bucket)}
}

// allow takes a token from the user's bucket. When there is none it returns false and
// how long until there is one.
func (l *limiter) allow(userID int64, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= sweepInterval {
		l.sweep(now)
	}
	b := l.buckets[userID]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[userID] = b
	}
	return b.take(now, l.rate, l.burst)
}

// take refills the bucket for the time since its last use and takes a token. When there
// is none it returns false and how long until there is one.
func (b *bucket) take(now time.Time, rate, burst float64) (bool, time.Duration) {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(burst, b.tokens+el.Seconds()*rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) / rate * float64(time.Second))
	}
	b.tokens--
	return true, 0
}

// sweep forgets the buckets that have refilled: they equal a new one.
func (l *limiter) sweep(now time.Time) {
	l.lastSweep = now
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for id, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, id)
		}
	}
}
