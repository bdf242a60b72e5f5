package dash

import (
	"net/http"
	"strings"
	"time"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/onair"
)

// ViewerSessions counts viewers by session. stats.Sessions implements it.
type ViewerSessions interface {
	// Touch records a manifest request of a viewer of channel. id is the request's "s"
	// query parameter ("" without one: the session is then keyed by remoteAddr and
	// userAgent); the session lasts ttl after its last request. It must not block.
	Touch(channel, id, remoteAddr, userAgent string, ttl time.Duration)
}

// Request kinds reported to Server.OnRequest.
const (
	RequestManifest = "manifest" // index.mpd
	RequestSegment  = "segment"  // a media segment (one being written is streamed)
	RequestInit     = "init"     // an init segment
	RequestTime     = "time"     // the UTCTiming clock
	RequestOther    = "other"    // anything else (bad paths, methods)
)

// sessionParam is the query parameter that carries a viewer's session id. Players keep
// the manifest URL's query on every reload, so a page that opens index.mpd?s=ID (a random
// ID per player) has its viewer counted exactly; other players are counted by address and
// User-Agent.
const sessionParam = "s"

// viewerTTLPeriods is how many reload periods (the longer of MinimumUpdatePeriod and
// SegmentTarget) a viewer session lasts without a manifest request.
const viewerTTLPeriods = 3

// requestKind classifies a request for OnRequest.
func requestKind(r *http.Request) (channel, kind string) {
	p := r.URL.Path
	if rest, ok := strings.CutPrefix(p, "/dash"); ok && strings.HasPrefix(rest, "/") {
		p = rest
	}
	if p == "/time" {
		return "", RequestTime
	}
	name, file, ok := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	rendition := false
	if d, rest, found := strings.Cut(file, "/"); found && hub.ValidRendition(d) {
		file, rendition = rest, true
	}
	if !ok || !strings.HasPrefix(p, "/") || file == "" || strings.Contains(file, "/") || onair.ValidateUsername(name) != nil {
		return "", RequestOther
	}
	if file == "index.mpd" && !rendition {
		return name, RequestManifest
	}
	f, ok := parseFileName(file)
	switch {
	case !ok:
		return name, RequestOther
	case f.init:
		return name, RequestInit
	}
	return name, RequestSegment
}

// observe reports a finished request to OnRequest and, for a manifest served, to Viewers.
func (s *Server) observe(r *http.Request, sw *statusWriter, elapsed time.Duration) {
	if s.OnRequest == nil && s.Viewers == nil {
		return
	}
	channel, kind := requestKind(r)
	if s.OnRequest != nil {
		s.OnRequest(channel, kind, sw.status, sw.bytes, elapsed)
	}
	if s.Viewers != nil && kind == RequestManifest && sw.status == http.StatusOK {
		ttl := viewerTTLPeriods * max(s.MinimumUpdatePeriod, s.SegmentTarget)
		s.Viewers.Touch(channel, r.URL.Query().Get(sessionParam), r.RemoteAddr, r.UserAgent(), ttl)
	}
}
