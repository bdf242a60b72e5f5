package dash

import (
	"bytes"
	"encoding/xml"
	"strconv"
	"time"

	"github.com/onair/onair/internal/cmaf"
	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/unit"
)

// mpdParams are the settings an MPD is rendered with.
type mpdParams struct {
	id            string // the cmafstream's id, prefix of every file name
	partTarget    time.Duration
	segmentTarget time.Duration
	latency       time.Duration
	updatePeriod  time.Duration
	timeURL       string
	renditions    []renditionState // transcoded renditions of the live session
}

// period is the part of the window in one publisher session.
type period struct {
	session  int
	init     *cmafstream.Init
	start    time.Time     // wall clock of the session's first part
	origin   time.Duration // Start of the session's first part: presentationTimeOffset
	segments []*cmafstream.Segment
	open     bool // the State's open segment follows segments
	live     bool // the session being published: its segments are low-latency ones
}

// periods groups the listed segments, and the open one, by publisher session. A session
// whose init changes is a new Period anyway, since Init changes only at a new session.
func periods(st *cmafstream.State) []*period {
	var out []*period
	for _, sg := range st.Window() {
		if n := len(out); n == 0 || out[n-1].session != sg.Session {
			anchor := sg.Wall.Add(-sg.Start)
			out = append(out, &period{
				session: sg.Session,
				init:    sg.Init,
				start:   anchor.Add(sg.SessionStart),
				origin:  sg.SessionStart,
			})
		}
		p := out[len(out)-1]
		p.segments = append(p.segments, sg)
	}
	if len(st.Open) > 0 && !st.Ended {
		first := st.Open[0]
		if n := len(out); n == 0 || out[n-1].session != st.Session {
			anchor := first.Wall.Add(-first.Start)
			out = append(out, &period{
				session: st.Session,
				init:    first.Init,
				start:   anchor.Add(st.SessionStart),
				origin:  st.SessionStart,
			})
		}
		out[len(out)-1].open = true
	}
	// The low-latency signalling stays on between one segment's end and the next one's
	// first part too: dash.js decides on low-latency mode once, from the first manifest.
	if n := len(out); n > 0 && !st.Ended && out[n-1].session == st.Session {
		out[n-1].live = true
	}
	return out
}

// openEstimate returns the duration announced for the open segment: the last finished
// segment's (GOPs tend to be regular), or the segment target, and at least what it holds
// so far plus one part.
func openEstimate(st *cmafstream.State, p mpdParams) time.Duration {
	est := p.segmentTarget
	if last := st.Last(); last != nil && last.Session == st.Session {
		est = last.Duration
	}
	var sofar time.Duration
	for _, pt := range st.Open {
		sofar += pt.Duration
	}
	return max(est, sofar+p.partTarget)
}

// renderMPD writes the live MPD (ISO/IEC 23009-1) of a State: one Period per publisher
// session in the window, one AdaptationSet per track with a SegmentTemplate ($Number$ is
// the segment Seq) and a SegmentTimeline, and the low-latency signalling of the DASH-IF
// low-latency guidelines that dash.js acts on (availabilityTimeOffset with
// availabilityTimeComplete="false" for the segment being written, ServiceDescription,
// UTCTiming).
func renderMPD(st *cmafstream.State, p mpdParams) []byte {
	ps := periods(st)
	est := openEstimate(st, p)
	ato := max(0, est-p.partTarget).Truncate(time.Millisecond)

	var window time.Duration
	for _, sg := range st.Window() {
		window += sg.Duration
	}
	publish := st.Epoch
	if n := len(st.Parts); n > 0 {
		publish = st.Parts[n-1].Produced
	}

	var b bytes.Buffer
	b.Grow(2048 + 64*len(st.Segments))
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="dynamic"`)
	attr(&b, "availabilityStartTime", isoTime(st.Epoch))
	attr(&b, "publishTime", isoTime(publish))
	if st.Ended {
		if last := st.Last(); last != nil {
			attr(&b, "mediaPresentationDuration", isoDuration(last.Wall.Add(last.Duration).Sub(st.Epoch)))
		}
	} else {
		attr(&b, "minimumUpdatePeriod", isoDuration(p.updatePeriod))
	}
	attr(&b, "timeShiftBufferDepth", isoDuration(window))
	attr(&b, "suggestedPresentationDelay", isoDuration(p.latency))
	attr(&b, "maxSegmentDuration", isoDuration(max(st.MaxSegmentDuration, est)))
	attr(&b, "minBufferTime", isoDuration(max(4*p.partTarget, time.Second)))
	b.WriteString(">\n")

	lat := p.latency.Milliseconds()
	b.WriteString(`  <ServiceDescription id="0">` + "\n")
	b.WriteString(`    <Latency referenceId="0" target="` + strconv.FormatInt(lat, 10) +
		`" min="` + strconv.FormatInt(lat/2, 10) + `" max="` + strconv.FormatInt(3*lat, 10) + `"/>` + "\n")
	b.WriteString(`    <PlaybackRate min="0.96" max="1.04"/>` + "\n")
	b.WriteString("  </ServiceDescription>\n")

	for _, pr := range ps {
		b.WriteString(`  <Period`)
		attr(&b, "id", "p"+strconv.Itoa(pr.session))
		attr(&b, "start", isoDuration(pr.start.Sub(st.Epoch)))
		b.WriteString(">\n")
		for k, t := range pr.init.Tracks {
			writeAdaptationSet(&b, st, pr, k, t, p, est, ato)
		}
		b.WriteString("  </Period>\n")
	}
	b.WriteString(`  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014"`)
	attr(&b, "value", p.timeURL)
	b.WriteString("/>\n</MPD>\n")
	return b.Bytes()
}

func writeAdaptationSet(b *bytes.Buffer, st *cmafstream.State, pr *period, k int, t *unit.Track,
	p mpdParams, est, ato time.Duration,
) {
	video := t.IsVideo()
	b.WriteString(`    <AdaptationSet`)
	attr(b, "id", strconv.Itoa(k))
	if video {
		attr(b, "contentType", "video")
		attr(b, "mimeType", "video/mp4")
	} else {
		attr(b, "contentType", "audio")
		attr(b, "mimeType", "audio/mp4")
	}
	if video && pr.live && len(p.renditions) > 0 {
		// Renditions cut their segments at the same key frames, but each from where its
		// own segmenter started: segments need not line up one to one.
		b.WriteString(` startWithSAP="1">` + "\n")
	} else {
		b.WriteString(` segmentAlignment="true" startWithSAP="1">` + "\n")
	}

	first := st.NextSeq
	if len(pr.segments) > 0 {
		first = pr.segments[0].Seq
	}
	spans := make([]span, 0, len(pr.segments)+1)
	for _, sg := range pr.segments {
		spans = append(spans, span{sg.Start, sg.End()})
	}
	if pr.open {
		start := st.Open[0].Start
		spans = append(spans, span{start, start + est})
	}
	suffix := "-t" + strconv.Itoa(k)
	writeRepresentation(b, representation{
		id: strconv.Itoa(k), track: t, bandwidth: trackBandwidth(pr.segments, k), origin: pr.origin, first: first,
		init:  p.id + "-i" + strconv.Itoa(pr.init.Seq) + suffix + ".mp4",
		media: p.id + "-$Number$" + suffix + ".m4s",
		spans: spans, live: pr.live, ato: ato,
	})
	if video && pr.live {
		for _, r := range p.renditions {
			if rep, ok := r.representation(pr, p); ok {
				writeRepresentation(b, rep)
			}
		}
	}
	b.WriteString("    </AdaptationSet>\n")
}

// span is a segment's start and end on the media timeline.
type span struct{ start, end time.Duration }

// representation is one Representation of an AdaptationSet.
type representation struct {
	id          string
	track       *unit.Track
	bandwidth   int
	origin      time.Duration // media time at the Period start: presentationTimeOffset
	first       uint64        // $Number$ of the first span
	init, media string        // SegmentTemplate file names
	spans       []span
	live        bool // low-latency signalling for the segment being written
	ato         time.Duration
}

func writeRepresentation(b *bytes.Buffer, r representation) {
	t := r.track
	video := t.IsVideo()
	ts := timescale(t)
	b.WriteString(`      <Representation`)
	attr(b, "id", r.id)
	if c := cmaf.Codec(t); c != "" {
		attr(b, "codecs", c)
	}
	attr(b, "bandwidth", strconv.Itoa(max(r.bandwidth, 1)))
	if video {
		if w, h := cmaf.Resolution([]*unit.Track{t}); w > 0 && h > 0 {
			attr(b, "width", strconv.Itoa(w))
			attr(b, "height", strconv.Itoa(h))
		}
	} else if t.SampleRate > 0 {
		attr(b, "audioSamplingRate", strconv.Itoa(t.SampleRate))
	}
	b.WriteString(">\n")
	if !video && t.ChannelCount > 0 {
		b.WriteString(`        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011"`)
		attr(b, "value", strconv.Itoa(t.ChannelCount))
		b.WriteString("/>\n")
	}

	b.WriteString(`        <SegmentTemplate`)
	attr(b, "timescale", strconv.FormatInt(ts, 10))
	attr(b, "presentationTimeOffset", strconv.FormatInt(ticks(r.origin, ts), 10))
	attr(b, "startNumber", strconv.FormatUint(r.first, 10))
	attr(b, "initialization", r.init)
	attr(b, "media", r.media)
	if r.live {
		attr(b, "availabilityTimeOffset", strconv.FormatFloat(r.ato.Seconds(), 'f', 3, 64))
		attr(b, "availabilityTimeComplete", "false")
	}
	b.WriteString(">\n          <SegmentTimeline>\n")

	// S elements: t when not contiguous, r for runs of equal durations.
	type sEl struct {
		t, d  int64
		r     int
		gotoT bool
	}
	var els []sEl
	next := int64(-1)
	for _, sp := range r.spans {
		t0, t1 := ticks(sp.start, ts), ticks(sp.end, ts)
		d := t1 - t0
		if n := len(els); n > 0 && t0 == next && els[n-1].d == d {
			els[n-1].r++
		} else {
			els = append(els, sEl{t: t0, d: d, gotoT: t0 != next})
		}
		next = t1
	}
	for _, e := range els {
		b.WriteString(`            <S`)
		if e.gotoT {
			attr(b, "t", strconv.FormatInt(e.t, 10))
		}
		attr(b, "d", strconv.FormatInt(e.d, 10))
		if e.r > 0 {
			attr(b, "r", strconv.Itoa(e.r))
		}
		b.WriteString("/>\n")
	}
	b.WriteString("          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n")
}

// trackBandwidth returns the peak bit rate of track k over segments, 0 when unknown.
func trackBandwidth(segs []*cmafstream.Segment, k int) int {
	peak := 0
	for _, sg := range segs {
		if sg.Duration <= 0 {
			continue
		}
		size := 0
		for _, pt := range sg.Parts {
			size += len(pt.Track(k).Data)
		}
		if r := int(float64(size) * 8 / sg.Duration.Seconds()); r > peak {
			peak = r
		}
	}
	return peak
}

// timescale is the MPD timescale of a track: 90 kHz for video, the sample rate for audio
// (48 kHz when unknown), as in the init segment.
func timescale(t *unit.Track) int64 {
	switch {
	case t.IsVideo():
		return 90000
	case t.Codec == unit.CodecOpus:
		return 48000
	case t.SampleRate > 0:
		return int64(t.SampleRate)
	}
	return 48000
}

func ticks(d time.Duration, ts int64) int64 {
	return int64(d/time.Second)*ts + int64(d%time.Second)*ts/int64(time.Second)
}

func attr(b *bytes.Buffer, name, value string) {
	b.WriteByte(' ')
	b.WriteString(name)
	b.WriteString(`="`)
	_ = xml.EscapeText(b, []byte(value)) // writing to a bytes.Buffer cannot fail
	b.WriteByte('"')
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// isoDuration formats d as an xs:duration in seconds with millisecond precision.
func isoDuration(d time.Duration) string {
	return "PT" + strconv.FormatFloat(max(d, 0).Round(time.Millisecond).Seconds(), 'f', 3, 64) + "S"
}
