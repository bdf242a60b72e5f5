package rtmp

import (
	"net/netip"
	"sync"
	"time"
)

// limiterMaxEntries bounds the memory of the failure limiter.
const limiterMaxEntries = 4096

// failLimiter counts failed stream key attempts per IP address: after max failures
// within window, the address is blocked for block.
type failLimiter struct {
	max    int
	window time.Duration
	block  time.Duration
	now    func() time.Time

	mu      sync.Mutex
	entries map[netip.Addr]*failEntry
}

type failEntry struct {
	first        time.Time // start of the counting window
	count        int
	blockedUntil time.Time
}

// blocked reports whether ip may not try a key now.
func (l *failLimiter) blocked(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[ip]
	return e != nil && l.now().Before(e.blockedUntil)
}

// fail records a failed attempt of ip and reports whether ip is now blocked.
func (l *failLimiter) fail(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.entries == nil {
		l.entries = make(map[netip.Addr]*failEntry)
	}
	e := l.entries[ip]
	if e == nil {
		if len(l.entries) >= limiterMaxEntries {
			l.prune(now)
		}
		if len(l.entries) >= limiterMaxEntries {
			// Under a wide attack, forget everybody rather than grow without bound.
			clear(l.entries)
		}
		e = &failEntry{first: now}
		l.entries[ip] = e
	}
	if now.Sub(e.first) > l.window {
		e.first, e.count = now, 0
	}
	e.count++
	if e.count >= l.max {
		e.blockedUntil = now.Add(l.block)
		e.first, e.count = now, 0
		return true
	}
	return false
}

func (l *failLimiter) prune(now time.Time) {
	for ip, e := range l.entries {
		if now.Sub(e.first) > l.window && !now.Before(e.blockedUntil) {
			delete(l.entries, ip)
		}
	}
}
