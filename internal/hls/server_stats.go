package hls

import (
	"bytes"
	"net/http"
	"time"
)

// ViewerSessions counts viewers by session. stats.Sessions implements it.
type ViewerSessions interface {
	// SessionID returns id when it is a well-formed session id, else a new one.
	SessionID(id string) string
	// Touch records a media playlist request of a viewer of channel. id is the request's
	// "s" query parameter ("" without one: the session is then keyed by remoteAddr and
	// userAgent); the session lasts ttl after its last request. It must not block.
	Touch(channel, id, remoteAddr, userAgent string, ttl time.Duration)
}

// Request kinds reported to Server.OnRequest.
const (
	RequestMultivariant = "multivariant" // index.m3u8
	RequestPlaylist     = "playlist"     // a media playlist answered at once (LL-HLS or TS)
	RequestBlocking     = "blocking"     // an LL-HLS playlist request with _HLS_msn (may wait)
	RequestPart         = "part"         // an fMP4 partial segment (a hinted one may wait)
	RequestSegment      = "segment"      // an fMP4 or TS media segment
	RequestInit         = "init"         // an fMP4 init segment
	RequestOther        = "other"        // anything else (bad paths, methods)
)

// sessionParam is the query parameter that carries a viewer's session id.
const sessionParam = "s"

// viewerTTLTargets is how many target durations a viewer session lasts without a
// playlist request: players reload the playlist about once per target duration.
const viewerTTLTargets = 3

// requestKind classifies a request for OnRequest.
func requestKind(r *http.Request) (channel, kind string) {
	name, dir, file, ok := splitPath(r.URL.Path)
	if !ok {
		return "", RequestOther
	}
	if dir == "ts" {
		if file == "index.m3u8" {
			return name, RequestPlaylist
		}
		return name, RequestSegment
	}
	switch file {
	case "index.m3u8":
		return name, RequestMultivariant
	case "stream.m3u8":
		if r.URL.Query().Has("_HLS_msn") {
			return name, RequestBlocking
		}
		return name, RequestPlaylist
	}
	f, ok := parseFMP4Name(file)
	if !ok {
		return name, RequestOther
	}
	switch f.kind {
	case 'i':
		return name, RequestInit
	case 'p':
		return name, RequestPart
	}
	return name, RequestSegment
}

// observe reports a finished request to OnRequest and, for a media playlist served, to
// Viewers.
func (s *Server) observe(r *http.Request, sw *statusWriter, elapsed time.Duration) {
	if s.OnRequest == nil && s.Viewers == nil {
		return
	}
	channel, kind := requestKind(r)
	if s.OnRequest != nil {
		s.OnRequest(channel, kind, sw.status, sw.bytes, elapsed)
	}
	if s.Viewers != nil && sw.status == http.StatusOK && sw.target > 0 &&
		(kind == RequestPlaylist || kind == RequestBlocking) {
		s.Viewers.Touch(channel, r.URL.Query().Get(sessionParam), r.RemoteAddr, r.UserAgent(),
			viewerTTLTargets*sw.target)
	}
}

// setTarget tells observe the target duration of the media playlist being served.
func setTarget(w http.ResponseWriter, seconds int) {
	if sw, ok := w.(*statusWriter); ok {
		sw.target = time.Duration(seconds) * time.Second
	}
}

// withSession returns a copy of the multivariant playlist b whose variant URIs (the
// lines that are not tags) carry the viewer's session id: the request's own, or a new
// one. Without Viewers, b is returned as it is.
func (s *Server) withSession(b []byte, r *http.Request) []byte {
	if s.Viewers == nil || len(b) == 0 || b[len(b)-1] != '\n' {
		return b
	}
	id := s.Viewers.SessionID(r.URL.Query().Get(sessionParam))
	out := make([]byte, 0, len(b)+4*(len(sessionParam)+len(id)+2))
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b[:i]
		b = b[i+1:]
		out = append(out, line...)
		if len(line) > 0 && line[0] != '#' {
			out = append(out, '?')
			out = append(out, sessionParam...)
			out = append(out, '=')
			out = append(out, id...)
		}
		out = append(out, '\n')
	}
	return out
}
