package record

import (
	"bytes"
	"encoding/xml"
	"strconv"
	"time"
)

// DASH names: the MPD lists every track as its own AdaptationSet (dash.js refuses
// multiplexed representations), so the server cuts each track out of the stored
// segments on request (see TrackInitName and TrackSegmentName).

// TrackInitName returns the name under which the init segment k of track t is served.
func TrackInitName(k, t int) string {
	return "init-" + strconv.Itoa(k) + "-t" + strconv.Itoa(t) + ".mp4"
}

// TrackSegmentName returns the name under which segment n of track t is served.
func TrackSegmentName(n, t int) string {
	return "seg-" + strconv.Itoa(n) + "-t" + strconv.Itoa(t) + ".m4s"
}

// ParseTrackName reads a name made by TrackInitName or TrackSegmentName: whether it is an
// init segment, its number, and the track.
func ParseTrackName(name string) (init bool, n, track int, ok bool) {
	var prefix, suffix string
	switch {
	case len(name) > 5 && name[:5] == "init-":
		init, prefix, suffix = true, "init-", ".mp4"
	case len(name) > 4 && name[:4] == "seg-":
		prefix, suffix = "seg-", ".m4s"
	default:
		return false, 0, 0, false
	}
	if len(name) < len(prefix)+len(suffix) || name[len(name)-len(suffix):] != suffix {
		return false, 0, 0, false
	}
	mid := name[len(prefix) : len(name)-len(suffix)]
	i := bytes.LastIndex([]byte(mid), []byte("-t"))
	if i < 0 {
		return false, 0, 0, false
	}
	n, ok1 := parseIndex(mid[:i], "", "")
	track, ok2 := parseIndex(mid[i+2:], "", "")
	if !ok1 || !ok2 || track > maxTrack {
		return false, 0, 0, false
	}
	return init, n, track, true
}

// mpdPeriod is a run of segments without discontinuity and with one init segment.
type mpdPeriod struct {
	start    time.Duration // in the presentation: the sum of the durations before it
	init     int
	segments []segmentEntry
}

func mpdPeriods(segs []segmentEntry) []*mpdPeriod {
	var out []*mpdPeriod
	var at time.Duration
	for _, e := range segs {
		if n := len(out); n == 0 || e.Disc || e.Init != out[n-1].init {
			out = append(out, &mpdPeriod{start: at, init: e.Init})
		}
		p := out[len(out)-1]
		p.segments = append(p.segments, e)
		at += e.Duration
	}
	return out
}

// renderMPD writes the static DASH manifest (ISO/IEC 23009-1, on-demand use of the live
// profile) of a finished recording: one Period per publisher session, one AdaptationSet
// per track with a SegmentTemplate whose $Number$ is the segment number and a
// SegmentTimeline in the track's timescale.
func renderMPD(segs []segmentEntry, meta *recordingMeta) []byte {
	var total, longest time.Duration
	var peak int64
	for _, e := range segs {
		total += e.Duration
		longest = max(longest, e.Duration)
		if e.Duration > 0 {
			peak = max(peak, e.Size*8*int64(time.Second)/int64(e.Duration))
		}
	}
	var b bytes.Buffer
	b.Grow(1024 + 40*len(segs))
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="static"`)
	xmlAttr(&b, "mediaPresentationDuration", isoDuration(total))
	xmlAttr(&b, "maxSegmentDuration", isoDuration(longest))
	xmlAttr(&b, "minBufferTime", isoDuration(max(longest, time.Second)))
	b.WriteString(">\n")
	for i, p := range mpdPeriods(segs) {
		if p.init < 0 || p.init >= len(meta.Inits) {
			continue
		}
		var dur time.Duration
		for _, e := range p.segments {
			dur += e.Duration
		}
		b.WriteString("  <Period")
		xmlAttr(&b, "id", "p"+strconv.Itoa(i))
		xmlAttr(&b, "start", isoDuration(p.start))
		xmlAttr(&b, "duration", isoDuration(dur))
		b.WriteString(">\n")
		tracks := meta.Inits[p.init].Tracks
		hasVideo := false
		for _, t := range tracks {
			hasVideo = hasVideo || t.Video
		}
		for k, t := range tracks {
			bw := peak
			if !t.Video && hasVideo {
				bw = 128000 // the segments' peak rate is mostly video
			}
			writeMPDTrack(&b, p, k, t, max(bw, 1))
		}
		b.WriteString("  </Period>\n")
	}
	b.WriteString("</MPD>\n")
	return b.Bytes()
}

func writeMPDTrack(b *bytes.Buffer, p *mpdPeriod, k int, t trackMeta, bandwidth int64) {
	b.WriteString("    <AdaptationSet")
	xmlAttr(b, "id", strconv.Itoa(k))
	if t.Video {
		xmlAttr(b, "contentType", "video")
		xmlAttr(b, "mimeType", "video/mp4")
	} else {
		xmlAttr(b, "contentType", "audio")
		xmlAttr(b, "mimeType", "audio/mp4")
	}
	b.WriteString(` segmentAlignment="true" startWithSAP="1">` + "\n")
	b.WriteString("      <Representation")
	xmlAttr(b, "id", strconv.Itoa(k))
	if t.Codec != "" {
		xmlAttr(b, "codecs", t.Codec)
	}
	xmlAttr(b, "bandwidth", strconv.FormatInt(bandwidth, 10))
	if t.Video && t.Width > 0 && t.Height > 0 {
		xmlAttr(b, "width", strconv.Itoa(t.Width))
		xmlAttr(b, "height", strconv.Itoa(t.Height))
	}
	if !t.Video && t.SampleRate > 0 {
		xmlAttr(b, "audioSamplingRate", strconv.Itoa(t.SampleRate))
	}
	b.WriteString(">\n")
	if !t.Video && t.Channels > 0 {
		b.WriteString(`        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011"`)
		xmlAttr(b, "value", strconv.Itoa(t.Channels))
		b.WriteString("/>\n")
	}
	ts := t.Timescale
	first := p.segments[0]
	b.WriteString("        <SegmentTemplate")
	xmlAttr(b, "timescale", strconv.FormatInt(ts, 10))
	xmlAttr(b, "presentationTimeOffset", strconv.FormatInt(ticks(first.Start, ts), 10))
	xmlAttr(b, "startNumber", strconv.Itoa(first.N))
	xmlAttr(b, "initialization", TrackInitName(p.init, k))
	xmlAttr(b, "media", "seg-$Number$-t"+strconv.Itoa(k)+".m4s")
	b.WriteString(">\n          <SegmentTimeline>\n")
	type sEl struct {
		t, d  int64
		r     int
		gotoT bool
	}
	var els []sEl
	next := int64(-1)
	for _, e := range p.segments {
		t0, t1 := ticks(e.Start, ts), ticks(e.end(), ts)
		d := t1 - t0
		if n := len(els); n > 0 && t0 == next && els[n-1].d == d {
			els[n-1].r++
		} else {
			els = append(els, sEl{t: t0, d: d, gotoT: t0 != next})
		}
		next = t1
	}
	for _, e := range els {
		b.WriteString("            <S")
		if e.gotoT {
			xmlAttr(b, "t", strconv.FormatInt(e.t, 10))
		}
		xmlAttr(b, "d", strconv.FormatInt(e.d, 10))
		if e.r > 0 {
			xmlAttr(b, "r", strconv.Itoa(e.r))
		}
		b.WriteString("/>\n")
	}
	b.WriteString("          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n    </AdaptationSet>\n")
}

func ticks(d time.Duration, ts int64) int64 {
	return int64(d/time.Second)*ts + int64(d%time.Second)*ts/int64(time.Second)
}

func xmlAttr(b *bytes.Buffer, name, value string) {
	b.WriteByte(' ')
	b.WriteString(name)
	b.WriteString(`="`)
	_ = xml.EscapeText(b, []byte(value)) // writing to a bytes.Buffer cannot fail
	b.WriteByte('"')
}

// isoDuration formats d as an xs:duration in seconds with millisecond precision.
func isoDuration(d time.Duration) string {
	return "PT" + strconv.FormatFloat(max(d, 0).Round(time.Millisecond).Seconds(), 'f', 3, 64) + "S"
}
