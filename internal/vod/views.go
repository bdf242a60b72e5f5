package vod

import (
	"context"
	"crypto/sha256"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/onair/onair/internal/onair"
)

// viewKey identifies a viewer of a recording: a hash of the recording, the client
// address and the user agent (addresses are not kept).
type viewKey [16]byte

// viewCounter remembers, for window, which viewers were counted. It holds at most max
// viewers: past that, expired ones are dropped, and if none expired, all of them (a
// few views are then counted twice rather than memory growing without bound).
type viewCounter struct {
	window time.Duration
	max    int
	now    func() time.Time

	mu   sync.Mutex
	seen map[viewKey]time.Time // expiry
}

// first reports whether the viewer is new in the window, and remembers it.
func (v *viewCounter) first(id int64, client, agent string) bool {
	h := sha256.New()
	h.Write([]byte(strconv.FormatInt(id, 10)))
	h.Write([]byte{0})
	h.Write([]byte(client))
	h.Write([]byte{0})
	h.Write([]byte(agent))
	var k viewKey
	copy(k[:], h.Sum(nil))

	now := v.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	if exp, ok := v.seen[k]; ok && now.Before(exp) {
		return false
	}
	if len(v.seen) >= v.max {
		for key, exp := range v.seen {
			if !now.Before(exp) {
				delete(v.seen, key)
			}
		}
		if len(v.seen) >= v.max {
			clear(v.seen)
		}
	}
	v.seen[k] = now.Add(v.window)
	return true
}

// countView counts a view of a finished recording once per viewer and window.
func (s *Server) countView(r *http.Request, id int64) {
	if !s.views.first(id, s.ClientIP(r), r.UserAgent()) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := s.Recordings.AddRecordingView(ctx, id); err != nil && onair.ErrorCode(err) != onair.ENOTFOUND {
		s.Logger.Warn("view not counted", "recording_id", id, "err", err)
	}
}

// remoteHost returns the host of r.RemoteAddr.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
