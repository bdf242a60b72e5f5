package hls

import (
	"bytes"
	"math"
	"strconv"
	"time"

	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/unit"
)

// llParams are the playlist-wide values of an LL-HLS media playlist.
type llParams struct {
	target     int           // EXT-X-TARGETDURATION, seconds
	partTarget time.Duration // PART-TARGET, whole milliseconds
	skipUntil  time.Duration // CAN-SKIP-UNTIL; 0 when delta updates are not offered
	wallShift  time.Duration // added to EXT-X-PROGRAM-DATE-TIME (a rendition: see Server.wallShift)
}

// llParamsOf derives the playlist-wide values from a State: TARGETDURATION covers the
// longest segment so far and PART-TARGET the longest part (at least the configured
// target), so neither is ever exceeded and neither decreases.
func llParamsOf(st *cmafstream.State, partTarget time.Duration) llParams {
	p := llParams{
		target:     ceilSeconds(st.MaxSegmentDuration),
		partTarget: max(partTarget, ceilMillis(st.MaxPartDuration)),
	}
	var window time.Duration
	for _, sg := range st.Window() {
		window += sg.Duration
	}
	// Delta updates help once the window is longer than the skip boundary (RFC 8216bis
	// 4.4.3.8: at least six target durations).
	if boundary := 6 * time.Duration(p.target) * time.Second; window > boundary {
		p.skipUntil = boundary
	}
	return p
}

// renderLL writes an LL-HLS media playlist (RFC 8216bis) of st's window; with skip it
// writes the Playlist Delta Update (section 6.2.5.1). URIs are relative to the playlist:
// "{id}-i{n}.mp4", "{id}-{seq}.m4s", "{id}-p{num}.m4s".
func renderLL(st *cmafstream.State, id string, p llParams, skip bool) []byte {
	win := st.Window()
	var b bytes.Buffer
	b.Grow(512 + 160*len(win) + 80*len(st.Parts))
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:")
	b.WriteString(strconv.Itoa(p.target))
	b.WriteString("\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=")
	b.WriteString(seconds(3 * p.partTarget))
	if p.skipUntil > 0 {
		b.WriteString(",CAN-SKIP-UNTIL=")
		b.WriteString(seconds(p.skipUntil))
	}
	b.WriteString("\n#EXT-X-PART-INF:PART-TARGET=")
	b.WriteString(seconds(p.partTarget))
	b.WriteString("\n#EXT-X-MEDIA-SEQUENCE:")
	b.WriteString(strconv.FormatUint(win[0].Seq, 10))
	b.WriteByte('\n')
	if d := win[0].Discontinuities; d > 0 {
		b.WriteString("#EXT-X-DISCONTINUITY-SEQUENCE:")
		b.WriteString(strconv.FormatUint(d, 10))
		b.WriteByte('\n')
	}

	// The end of the playlist: parts are shown for the segments of the last three target
	// durations (RFC 8216bis 6.2.2), segments are skipped before the skip boundary.
	last := win[len(win)-1]
	end := last.End()
	if n := len(st.Open); n > 0 {
		end = st.Open[n-1].Start + st.Open[n-1].Duration
	}
	partsFrom := end - 3*time.Duration(p.target)*time.Second
	skipped := 0
	if skip && p.skipUntil > 0 && !st.Ended {
		for skipped < len(win)-1 && last.End()-win[skipped].End() >= p.skipUntil {
			skipped++
		}
		b.WriteString("#EXT-X-SKIP:SKIPPED-SEGMENTS=")
		b.WriteString(strconv.Itoa(skipped))
		b.WriteByte('\n')
	}

	var prevInit *cmafstream.Init
	if skipped > 0 {
		prevInit = win[skipped-1].Init
	}
	for _, sg := range win[skipped:] {
		if sg.Discontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if sg.Init != prevInit {
			writeMap(&b, id, sg.Init)
			prevInit = sg.Init
		}
		writePDT(&b, sg.Wall.Add(p.wallShift))
		if sg.End() > partsFrom {
			for _, pt := range sg.Parts {
				writePart(&b, id, pt)
			}
		}
		b.WriteString("#EXTINF:")
		b.WriteString(strconv.FormatFloat(sg.Duration.Round(time.Millisecond).Seconds(), 'f', 3, 64))
		b.WriteString(",\n")
		b.WriteString(id)
		b.WriteByte('-')
		b.WriteString(strconv.FormatUint(sg.Seq, 10))
		b.WriteString(".m4s\n")
	}
	if len(st.Open) > 0 {
		if st.OpenDiscontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		if in := st.Open[0].Init; in != prevInit {
			writeMap(&b, id, in)
		}
		writePDT(&b, st.Open[0].Wall.Add(p.wallShift))
		for _, pt := range st.Open {
			writePart(&b, id, pt)
		}
	}
	if st.Ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	} else {
		b.WriteString("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"")
		b.WriteString(partName(id, st.NextPart))
		b.WriteString("\"\n")
	}
	return b.Bytes()
}

func writeMap(b *bytes.Buffer, id string, in *cmafstream.Init) {
	b.WriteString("#EXT-X-MAP:URI=\"")
	b.WriteString(initName(id, in.Seq))
	b.WriteString("\"\n")
}

func writePDT(b *bytes.Buffer, t time.Time) {
	b.WriteString("#EXT-X-PROGRAM-DATE-TIME:")
	b.WriteString(t.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	b.WriteByte('\n')
}

func writePart(b *bytes.Buffer, id string, pt *cmafstream.Part) {
	b.WriteString("#EXT-X-PART:DURATION=")
	b.WriteString(strconv.FormatFloat(pt.Duration.Seconds(), 'f', 5, 64))
	b.WriteString(",URI=\"")
	b.WriteString(partName(id, pt.Number))
	b.WriteByte('"')
	if pt.Independent {
		b.WriteString(",INDEPENDENT=YES")
	}
	b.WriteByte('\n')
}

func initName(id string, seq int) string { return id + "-i" + strconv.Itoa(seq) + ".mp4" }

func partName(id string, num uint64) string {
	return id + "-p" + strconv.FormatUint(num, 10) + ".m4s"
}

// seconds formats d in seconds with three decimals.
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Round(time.Millisecond).Seconds(), 'f', 3, 64)
}

// ceilMillis rounds d up to whole milliseconds.
func ceilMillis(d time.Duration) time.Duration {
	return time.Duration(math.Ceil(float64(d)/float64(time.Millisecond))) * time.Millisecond
}

// variant is one variant stream of a multivariant playlist.
type variant struct {
	uri       string
	codecs    string
	width     int
	height    int
	bandwidth int
	average   int
	frameRate float64 // 0: not written
}

// renderMultivariant writes a multivariant playlist with the given variants, best
// first (RFC 8216bis 4.4.6.2).
func renderMultivariant(vs ...variant) []byte {
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	for _, v := range vs {
		b.WriteString("#EXT-X-STREAM-INF:BANDWIDTH=")
		b.WriteString(strconv.Itoa(max(v.bandwidth, 1)))
		if v.average > 0 {
			b.WriteString(",AVERAGE-BANDWIDTH=")
			b.WriteString(strconv.Itoa(v.average))
		}
		if v.codecs != "" {
			b.WriteString(",CODECS=\"")
			b.WriteString(v.codecs)
			b.WriteByte('"')
		}
		if v.width > 0 && v.height > 0 {
			b.WriteString(",RESOLUTION=")
			b.WriteString(strconv.Itoa(v.width))
			b.WriteByte('x')
			b.WriteString(strconv.Itoa(v.height))
		}
		if v.frameRate > 0 {
			b.WriteString(",FRAME-RATE=")
			b.WriteString(strconv.FormatFloat(v.frameRate, 'f', 3, 64))
		}
		b.WriteByte('\n')
		b.WriteString(v.uri)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// bitrates returns the peak and average bit rates of segments given as (size, duration).
func bitrates(n int, seg func(i int) (int, time.Duration)) (peak, average int) {
	var size int64
	var dur time.Duration
	for i := 0; i < n; i++ {
		sz, d := seg(i)
		if d <= 0 {
			continue
		}
		size += int64(sz)
		dur += d
		if r := int(float64(sz) * 8 / d.Seconds()); r > peak {
			peak = r
		}
	}
	if dur > 0 {
		average = int(float64(size) * 8 / dur.Seconds())
	}
	return peak, average
}

// hasVideo reports whether a track list has a video track.
func hasVideo(tracks []*unit.Track) bool {
	for _, t := range tracks {
		if t != nil && t.IsVideo() {
			return true
		}
	}
	return false
}
