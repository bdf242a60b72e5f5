package dash

import (
	"cmp"
	"strconv"
	"time"

	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/hub"
)

// Rendition is a transcoded rendition of a live stream: another hub stream on the
// source's timeline (see hub.SourceDerived), served under /dash/{name}/{Name}/. Its video
// is listed as another Representation of the source's video AdaptationSet.
type Rendition struct {
	// Name is the path element: "720p" (lowercase letters and digits).
	Name string
	// Stream is the hub stream that carries it.
	Stream string
	// Bandwidth is its expected video bit rate (bit/s), used until segments are measured.
	Bandwidth int
}

// renditionState is a rendition with its segmenter's current state.
type renditionState struct {
	name      string
	id        string // the rendition segmenter's id
	st        *cmafstream.State
	bandwidth int // expected, until measured
}

// representation lists the rendition's video in the live Period pr of the source: its
// segments of the current session from the Period's start on, and the one being written.
// It reports false when the rendition has no video segment in the Period yet.
func (r renditionState) representation(pr *period, p mpdParams) (representation, bool) {
	st := r.st
	var segs []*cmafstream.Segment
	for _, sg := range st.Window() {
		if sg.Session == st.Session && sg.Start >= pr.origin {
			segs = append(segs, sg)
		}
	}
	in := (*cmafstream.Init)(nil)
	switch {
	case len(segs) > 0:
		in = segs[len(segs)-1].Init
	case len(st.Open) > 0:
		in = st.Open[0].Init
	default:
		return representation{}, false
	}
	k := -1
	for i, t := range in.Tracks {
		if t.IsVideo() {
			k = i
			break
		}
	}
	if k < 0 {
		return representation{}, false
	}
	spans := make([]span, 0, len(segs)+1)
	for _, sg := range segs {
		spans = append(spans, span{sg.Start, sg.End()})
	}
	first := st.NextSeq
	if len(segs) > 0 {
		first = segs[0].Seq
	}
	est := openEstimate(st, p)
	if len(st.Open) > 0 && !st.Ended && st.Open[0].Start >= pr.origin {
		start := st.Open[0].Start
		spans = append(spans, span{start, start + est})
	}
	if len(spans) == 0 {
		return representation{}, false
	}
	suffix := "-t" + strconv.Itoa(k)
	return representation{
		id: r.name, track: in.Tracks[k], bandwidth: cmp.Or(trackBandwidth(segs, k), r.bandwidth), origin: pr.origin, first: first,
		init:  r.name + "/" + r.id + "-i" + strconv.Itoa(in.Seq) + suffix + ".mp4",
		media: r.name + "/" + r.id + "-$Number$" + suffix + ".m4s",
		spans: spans, live: true, ato: max(0, est-p.partTarget).Truncate(time.Millisecond),
	}, true
}

// renditionStates returns the renditions of stream name whose segmenters run, starting
// them (so that a client switching to one finds its segments).
func (s *Server) renditionStates(name string) []renditionState {
	if s.Renditions == nil {
		return nil
	}
	var out []renditionState
	for _, r := range s.Renditions(name) {
		if !hub.ValidRendition(r.Name) || r.Stream != hub.DerivedName(name, r.Name) {
			continue
		}
		cs, err := s.CMAF.Stream(r.Stream)
		if err != nil {
			continue
		}
		if st := cs.State(); st != nil {
			out = append(out, renditionState{name: r.Name, id: cs.ID(), st: st, bandwidth: r.Bandwidth})
		}
	}
	return out
}
