package auth

import (
	"container/list"
	"sync"
	"time"
)

// Throttle defaults.
const (
	DefaultThrottleMax     = 5
	DefaultThrottleWindow  = 15 * time.Minute
	DefaultThrottleMaxKeys = 100_000
)

// Throttle limits failed attempts per key, e.g. login: 5 failures per 15 minutes per
// account and 20 per IP. The caller asks Allow before an attempt, calls Fail when it
// fails, and may call Reset when it succeeds.
//
// It counts in fixed windows: a key's window opens at its first failure and lasts
// Window; once Max failures fall in it, Allow refuses until it closes. So no more than
// Max failures per key fit in any window, and no more than 2×Max in any span of length
// Window.
//
// Memory is bounded: keys whose window has closed are pruned as new failures come in,
// and when MaxKeys keys are tracked, the key with the oldest window is dropped to make
// room. Set the fields before first use and do not change them after. Throttle is safe
// for concurrent use; its zero value is ready with the defaults.
type Throttle struct {
	// Max is how many failures a key may have in a window. Default: DefaultThrottleMax.
	Max int

	// Window is how long failures count. Default: DefaultThrottleWindow.
	Window time.Duration

	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	// MaxKeys is how many keys are tracked at most. Default: DefaultThrottleMaxKeys.
	MaxKeys int

	mu sync.Mutex
	// keys maps a key to its element in order.
	keys map[string]*list.Element
	// order holds *throttleEntry by window start, oldest first.
	order list.List
}

type throttleEntry struct {
	key      string
	start    time.Time
	failures int
}

// Allow reports whether an attempt for key may go ahead and, when it may not, how long
// until it may.
func (t *Throttle) Allow(key string) (ok bool, retryAfter time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.prune(now)
	el := t.keys[key]
	if el == nil {
		return true, 0
	}
	e := el.Value.(*throttleEntry)
	end := e.start.Add(t.window())
	if !now.Before(end) {
		t.remove(el)
		return true, 0
	}
	if e.failures < t.max() {
		return true, 0
	}
	return false, end.Sub(now)
}

// Fail records a failed attempt for key.
func (t *Throttle) Fail(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.prune(now)
	if el := t.keys[key]; el != nil {
		e := el.Value.(*throttleEntry)
		if now.Before(e.start.Add(t.window())) {
			e.failures++
			return
		}
		t.remove(el)
	}
	if t.keys == nil {
		t.keys = make(map[string]*list.Element)
	}
	for len(t.keys) >= t.maxKeys() {
		t.remove(t.order.Front())
	}
	t.keys[key] = t.order.PushBack(&throttleEntry{key: key, start: now, failures: 1})
}

// Reset forgets the failures of key (e.g. after a successful login).
func (t *Throttle) Reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if el := t.keys[key]; el != nil {
		t.remove(el)
	}
}

// Len returns how many keys are tracked.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.keys)
}

// prune drops the keys whose window has closed. Windows open in time order, so they
// sit at the front of order.
func (t *Throttle) prune(now time.Time) {
	w := t.window()
	for el := t.order.Front(); el != nil; el = t.order.Front() {
		if now.Before(el.Value.(*throttleEntry).start.Add(w)) {
			return
		}
		t.remove(el)
	}
}

func (t *Throttle) remove(el *list.Element) {
	delete(t.keys, el.Value.(*throttleEntry).key)
	t.order.Remove(el)
}

func (t *Throttle) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t *Throttle) max() int {
	if t.Max > 0 {
		return t.Max
	}
	return DefaultThrottleMax
}

func (t *Throttle) window() time.Duration {
	if t.Window > 0 {
		return t.Window
	}
	return DefaultThrottleWindow
}

func (t *Throttle) maxKeys() int {
	if t.MaxKeys > 0 {
		return t.MaxKeys
	}
	return DefaultThrottleMaxKeys
}
