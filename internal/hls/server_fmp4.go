package hls

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/onair/onair/internal/cmaf"
	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/unit"
)

// Memo keys of what this package caches on cmafstream States and Inits.
type (
	llKey          struct{ skip bool }
	multivariantKy struct{}
)

// fmp4File is a parsed fMP4 file name.
type fmp4File struct {
	id   string
	kind byte // 'i' init, 's' segment, 'p' part
	num  uint64
}

// parseFMP4Name parses "{id}-i{n}.mp4", "{id}-{seq}.m4s" and "{id}-p{num}.m4s", where id
// is 16 lowercase hex digits and numbers are canonical decimals.
func parseFMP4Name(file string) (fmp4File, bool) {
	var f fmp4File
	base, ext := file, ""
	if i := strings.LastIndexByte(file, '.'); i >= 0 {
		base, ext = file[:i], file[i:]
	}
	if len(base) < 18 || base[16] != '-' || !isHex(base[:16]) {
		return f, false
	}
	f.id = base[:16]
	num := base[17:]
	switch {
	case ext == ".mp4" && strings.HasPrefix(num, "i"):
		f.kind, num = 'i', num[1:]
	case ext == ".m4s" && strings.HasPrefix(num, "p"):
		f.kind, num = 'p', num[1:]
	case ext == ".m4s":
		f.kind = 's'
	default:
		return f, false
	}
	n, ok := parseDecimal(num)
	if !ok || (f.kind == 'i' && n > 1<<31) {
		return f, false
	}
	f.num = n
	return f, true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// parseDecimal parses a canonical unsigned decimal (no sign, no leading zero).
func parseDecimal(s string) (uint64, bool) {
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// preferTS reports whether the multivariant playlist points to the MPEG-TS rendition:
// without a CMAF manager, or for MP3, which MediaSource plays from MPEG-TS only.
func (s *Server) preferTS(tracks []*unit.Track) bool {
	if s.CMAF == nil {
		return true
	}
	mp3 := false
	for _, t := range tracks {
		if t == nil || !tsSupports(t.Codec) {
			return false
		}
		if t.Codec == unit.CodecMP3 {
			mp3 = true
		}
	}
	return mp3
}

// serveMultivariant answers index.m3u8 once the chosen rendition has a first segment, so
// that CODECS, RESOLUTION and BANDWIDTH are known.
func (s *Server) serveMultivariant(w http.ResponseWriter, r *http.Request, name string) {
	hs := s.Hub.Lookup(r.Context(), name)
	var tracks []*unit.Track
	if hs != nil {
		tracks = hs.Tracks()
	}
	if hs == nil || s.preferTS(tracks) {
		s.serveTSMultivariant(w, r, name)
		return
	}
	_, st, status := s.firstSegment(r.Context(), name)
	if st == nil {
		writeStatus(w, status)
		return
	}
	in := st.Segments[len(st.Segments)-1].Init
	if s.Renditions != nil {
		if rs := s.Renditions(name); len(rs) > 0 {
			writePlaylist(w, r, s.withSession(s.renderLadder(hs, st, rs), r), "no-cache")
			return
		}
	}
	b := in.Memo(multivariantKy{}, func() any {
		v := measured(st, in)
		v.uri = "stream.m3u8"
		return renderMultivariant(v)
	}).([]byte)
	writePlaylist(w, r, s.withSession(b, r), "no-cache")
}

// Rendition is a transcoded rendition of a live stream: another hub stream, on the
// source's timeline, served under /hls/{name}/{Name}/.
type Rendition struct {
	// Name is the path element: "720p", "audio" (lowercase letters and digits).
	Name string
	// Stream is the hub stream that carries it.
	Stream string
	// Width and Height are its picture size (0 for audio only).
	Width, Height int
	// Bandwidth is its expected peak bit rate (bit/s), used until segments are measured.
	Bandwidth int
}

// renderLadder renders the multivariant playlist of a transcoded stream: the source,
// then each rendition. A rendition's segmenter is started here, so that its playlist is
// ready when a player switches to it; until it has segments, its BANDWIDTH is the
// configured one and CODECS come from its hub tracks.
func (s *Server) renderLadder(hs *hub.Stream, st *cmafstream.State, rs []Rendition) []byte {
	in := st.Segments[len(st.Segments)-1].Init
	src := measured(st, in)
	src.uri = "stream.m3u8"
	src.frameRate = frameRate(hs)
	vs := []variant{src}
	for _, r := range rs {
		if !hub.ValidRendition(r.Name) || r.Stream != hub.DerivedName(hs.Name(), r.Name) {
			continue
		}
		rh := s.Hub.Stream(r.Stream)
		if rh == nil {
			continue
		}
		v := variant{bandwidth: r.Bandwidth, width: r.Width, height: r.Height, codecs: cmaf.Codecs(rh.Tracks())}
		if cs, err := s.CMAF.Stream(r.Stream); err == nil {
			if rst := cs.State(); rst != nil && len(rst.Segments) > 0 {
				v = measured(rst, rst.Segments[len(rst.Segments)-1].Init)
			}
		}
		v.uri = r.Name + "/stream.m3u8"
		v.frameRate = frameRate(rh)
		vs = append(vs, v)
	}
	return renderMultivariant(vs...)
}

// maxWallShift bounds the correction of a rendition's wall clock: more means the two
// timelines are not the same (a reconnect moved one), and nothing is corrected.
const maxWallShift = 10 * time.Second

// wallShift returns how far to move the wall clock (EXT-X-PROGRAM-DATE-TIME) of the
// rendition stream name so that it matches its source's. Both share one media timeline,
// but each segmenter anchors its wall clock when it starts segmenting, the rendition's
// later by the transcoding delay; players align levels by PROGRAM-DATE-TIME. Zero for a
// stream that is not a rendition.
func (s *Server) wallShift(name string, st *cmafstream.State) time.Duration {
	src, _, ok := hub.SplitDerived(name)
	if !ok || s.CMAF == nil {
		return 0
	}
	ra, ok := wallAnchor(st)
	if !ok {
		return 0
	}
	cs, err := s.CMAF.Stream(src)
	if err != nil {
		return 0
	}
	sa, ok := wallAnchor(cs.State())
	if d := sa.Sub(ra); ok && d > -maxWallShift && d < maxWallShift {
		return d
	}
	return 0
}

// wallAnchor is the wall clock time of media time 0 in the newest segment's session.
func wallAnchor(st *cmafstream.State) (time.Time, bool) {
	if st == nil {
		return time.Time{}, false
	}
	sg := st.Last()
	if sg == nil || sg.Wall.IsZero() {
		return time.Time{}, false
	}
	return sg.Wall.Add(-sg.Start), true
}

// measured describes the variant of a CMAF stream from its segments of init in.
func measured(st *cmafstream.State, in *cmafstream.Init) variant {
	var same []*cmafstream.Segment
	for _, sg := range st.Window() {
		if sg.Init == in {
			same = append(same, sg)
		}
	}
	peak, avg := bitrates(len(same), func(i int) (int, time.Duration) { return same[i].Size, same[i].Duration })
	v := variant{codecs: cmaf.Codecs(in.Tracks), bandwidth: peak, average: avg}
	v.width, v.height = cmaf.Resolution(in.Tracks)
	return v
}

// frameRate is the measured frame rate of a video stream (0 when unknown or audio only).
func frameRate(hs *hub.Stream) float64 {
	if hs == nil || !hasVideo(hs.Tracks()) {
		return 0
	}
	return math.Round(hs.Info().FPS*1000) / 1000
}

func (s *Server) serveTSMultivariant(w http.ResponseWriter, r *http.Request, name string) {
	m, status := s.muxerFor(name, true)
	if m == nil {
		writeStatus(w, status)
		return
	}
	if b, status := m.waitPlaylist(r.Context(), s.FirstSegmentWait); b == nil {
		writeStatus(w, status)
		return
	}
	var carried []*unit.Track
	for _, t := range m.stream.Tracks() {
		if t != nil && tsSupports(t.Codec) {
			carried = append(carried, t)
		}
	}
	m.mu.Lock()
	segs := m.segs
	peak, avg := bitrates(len(segs), func(i int) (int, time.Duration) { return len(segs[i].data), segs[i].duration })
	m.mu.Unlock()
	v := variant{uri: "ts/index.m3u8", codecs: cmaf.Codecs(carried), bandwidth: peak, average: avg}
	v.width, v.height = cmaf.Resolution(carried)
	writePlaylist(w, r, s.withSession(renderMultivariant(v), r), "no-cache")
}

// firstSegment returns the channel's CMAF stream and a State with at least one finished
// segment, waiting up to FirstSegmentWait. Without one it returns the status to answer.
func (s *Server) firstSegment(ctx context.Context, name string) (*cmafstream.Stream, *cmafstream.State, int) {
	if s.CMAF == nil {
		return nil, nil, http.StatusNotFound
	}
	cs, err := s.CMAF.Stream(name)
	switch {
	case errors.Is(err, cmafstream.ErrClosed):
		return nil, nil, http.StatusServiceUnavailable
	case err != nil:
		return nil, nil, http.StatusNotFound
	}
	ctx, cancel := s.waitContext(ctx, s.FirstSegmentWait)
	defer cancel()
	st, err := cs.Wait(ctx, func(st *cmafstream.State) bool { return len(st.Segments) > 0 })
	switch {
	case err == nil:
		return cs, st, http.StatusOK
	case errors.Is(err, cmafstream.ErrEnded):
		return nil, nil, http.StatusNotFound
	default:
		return nil, nil, http.StatusServiceUnavailable
	}
}

// directives are the LL-HLS delivery directives of a playlist request (RFC 8216bis 6.2.5).
type directives struct {
	msn     uint64
	hasMSN  bool
	part    int
	hasPart bool
	skip    bool
}

func parseDirectives(q url.Values) (directives, bool) {
	var d directives
	if v, ok := q["_HLS_msn"]; ok {
		n, ok := parseDecimal(v[0])
		if !ok {
			return d, false
		}
		d.msn, d.hasMSN = n, true
	}
	if v, ok := q["_HLS_part"]; ok {
		n, ok := parseDecimal(v[0])
		if !ok || n > 1<<20 {
			return d, false
		}
		d.part, d.hasPart = int(n), true
	}
	if d.hasPart && !d.hasMSN {
		return d, false // section 6.2.5.2: _HLS_part without _HLS_msn is a bad request
	}
	if v, ok := q["_HLS_skip"]; ok {
		switch v[0] {
		case "YES", "v2":
			d.skip = true
		default:
			return d, false
		}
	}
	return d, true
}

// serveMediaPlaylist answers stream.m3u8, blocking on _HLS_msn/_HLS_part.
func (s *Server) serveMediaPlaylist(w http.ResponseWriter, r *http.Request, name string) {
	d, ok := parseDirectives(r.URL.Query())
	if !ok {
		httpError(w, http.StatusBadRequest)
		return
	}
	cs, st, status := s.firstSegment(r.Context(), name)
	if st == nil {
		writeStatus(w, status)
		return
	}
	p := llParamsOf(st, s.PartTarget)
	cache := "no-cache"
	if d.hasMSN && !st.Ended {
		last := st.NextSeq - 1 // the newest finished segment
		if d.msn > last+2 || (d.hasPart && partsAhead(st, d.msn, d.part) > advancePartLimit(p.partTarget)) {
			httpError(w, http.StatusBadRequest)
			return
		}
		ready := func(st *cmafstream.State) bool { return st.NextSeq > d.msn }
		if d.hasPart {
			ready = func(st *cmafstream.State) bool { return st.HasPart(d.msn, d.part) }
		}
		ctx, cancel := s.waitContext(r.Context(), 3*time.Duration(p.target)*time.Second)
		var err error
		st, err = cs.Wait(ctx, ready)
		cancel()
		if err != nil && !errors.Is(err, cmafstream.ErrEnded) {
			writeStatus(w, http.StatusServiceUnavailable)
			return
		}
		p = llParamsOf(st, s.PartTarget)
		// Any answer to this URL satisfies it for good: shared caches may keep it.
		cache = "public, max-age=" + strconv.Itoa(3*p.target)
	}
	p.wallShift = s.wallShift(name, st)
	b := st.Memo(llKey{skip: d.skip && !st.Ended}, func() any {
		return renderLL(st, cs.ID(), p, d.skip && !st.Ended)
	}).([]byte)
	setTarget(w, p.target)
	writePlaylist(w, r, b, cache)
}

// partsAhead returns how many parts (msn, part) lies beyond the newest part of st, at
// least: a part of a segment after the open one counts the open segment as finished.
func partsAhead(st *cmafstream.State, msn uint64, part int) int {
	newest := len(st.Open) - 1
	switch {
	case msn < st.NextSeq:
		return 0
	case msn == st.NextSeq:
		return part - newest
	default:
		return part + 1
	}
}

// advancePartLimit is RFC 8216bis 6.2.5.2's Advance Part Limit.
func advancePartLimit(partTarget time.Duration) int {
	if partTarget < time.Second {
		return int(3 * time.Second / partTarget)
	}
	return 3
}

// serveFMP4 answers init segments, segments and parts from memory. A request for the
// next part or two, as announced by EXT-X-PRELOAD-HINT, waits for it.
func (s *Server) serveFMP4(w http.ResponseWriter, r *http.Request, name string, f fmp4File) {
	if s.CMAF == nil {
		httpError(w, http.StatusNotFound)
		return
	}
	cs, err := s.CMAF.Stream(name)
	if err != nil || cs.ID() != f.id {
		httpError(w, http.StatusNotFound)
		return
	}
	st := cs.State()
	audioOnly := st.Init != nil && !hasVideo(st.Init.Tracks)
	media := "video/iso.segment"
	if audioOnly {
		media = "audio/mp4"
	}
	etag := `"` + f.id + "-" + string(f.kind) + strconv.FormatUint(f.num, 10) + `"`
	switch f.kind {
	case 'i':
		in := findInit(st, int(f.num))
		if in == nil {
			httpError(w, http.StatusNotFound)
			return
		}
		ctype := "video/mp4"
		if !hasVideo(in.Tracks) {
			ctype = "audio/mp4"
		}
		cmafstream.ServeBytes(w, r, ctype, etag, [][]byte{in.Data})
	case 's':
		sg := st.Segment(f.num)
		if sg == nil {
			httpError(w, http.StatusNotFound)
			return
		}
		cmafstream.ServeBytes(w, r, media, etag, sg.Chunks())
	case 'p':
		pt := st.Part(f.num)
		if pt == nil && !st.Ended && f.num >= st.NextPart && f.num <= st.NextPart+1 {
			p := llParamsOf(st, s.PartTarget)
			ctx, cancel := s.waitContext(r.Context(), 3*time.Duration(max(p.target, 1))*time.Second)
			st, _ = cs.Wait(ctx, func(st *cmafstream.State) bool { return st.Part(f.num) != nil })
			cancel()
			pt = st.Part(f.num)
		}
		if pt == nil {
			httpError(w, http.StatusNotFound)
			return
		}
		cmafstream.ServeBytes(w, r, media, etag, [][]byte{pt.Data})
	}
}

// waitContext bounds a wait of a request by d and by Server.Close.
func (s *Server) waitContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, d)
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// findInit returns the init segment seq among those st refers to.
func findInit(st *cmafstream.State, seq int) *cmafstream.Init {
	if st.Init != nil && st.Init.Seq == seq {
		return st.Init
	}
	for _, sg := range st.Segments {
		if sg.Init.Seq == seq {
			return sg.Init
		}
	}
	return nil
}

func writePlaylist(w http.ResponseWriter, r *http.Request, b []byte, cache string) {
	h := w.Header()
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Cache-Control", cache)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

func writeStatus(w http.ResponseWriter, status int) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	httpError(w, status)
}
