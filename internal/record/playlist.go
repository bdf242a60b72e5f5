package record

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Object names of a recording.
const (
	// PlaylistName is the HLS media playlist: EVENT while recording, VOD at the end.
	PlaylistName = "index.m3u8"
	// ManifestName is the static DASH MPD, written at the end.
	ManifestName = "index.mpd"
	// metaName holds the tracks of each init segment (codecs, sizes) for the MPD.
	metaName = "meta.json"
)

// SegmentName returns the name of segment n of a recording.
func SegmentName(n int) string { return "seg-" + strconv.Itoa(n) + ".m4s" }

// InitName returns the name of init segment k of a recording.
func InitName(k int) string { return "init-" + strconv.Itoa(k) + ".mp4" }

// startTag is a playlist comment (not a tag: players ignore it) with the media time of
// the first segment of each publisher session, so that the exact timeline can be rebuilt
// from the playlist alone (the DASH manifest of a repaired recording needs it).
const startTag = "#ONAIR-START:"

// Limits of the playlist reader.
const (
	maxPlaylistSegments = 1 << 20
	maxPlaylistLine     = 4096
)

// segmentEntry is one segment of a recording.
type segmentEntry struct {
	N    int // seg-N.m4s
	Init int // init-K.mp4
	// Start and Duration are on the stream's media timeline (the hub's DTS).
	Start    time.Duration
	Duration time.Duration
	Size     int64
	// Disc marks a discontinuity before the segment: a publisher reconnect or a gap.
	Disc bool
	// Wall is the wall-clock time of Start at a session start (zero elsewhere).
	Wall time.Time
}

func (e segmentEntry) end() time.Duration { return e.Start + e.Duration }

// playlist is an HLS media playlist (RFC 8216) that grows one segment at a time: the
// lines of the segments are kept rendered, so a rewrite costs one copy.
type playlist struct {
	body     bytes.Buffer
	target   int // EXT-X-TARGETDURATION, whole seconds
	lastInit int
	count    int
}

func newPlaylist() *playlist { return &playlist{lastInit: -1, target: 1} }

// add appends a segment. The first segment and each discontinuity start a session: its
// init segment is mapped again and its start time is noted.
func (p *playlist) add(e segmentEntry) {
	b := &p.body
	session := p.count == 0 || e.Disc
	if e.Disc && p.count > 0 {
		b.WriteString("#EXT-X-DISCONTINUITY\n")
	}
	if session || e.Init != p.lastInit {
		b.WriteString(`#EXT-X-MAP:URI="`)
		b.WriteString(InitName(e.Init))
		b.WriteString("\"\n")
		p.lastInit = e.Init
	}
	if session {
		if !e.Wall.IsZero() {
			b.WriteString("#EXT-X-PROGRAM-DATE-TIME:")
			b.WriteString(e.Wall.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
			b.WriteByte('\n')
		}
		b.WriteString(startTag)
		b.WriteString(micros(e.Start))
		b.WriteByte('\n')
	}
	b.WriteString("#EXTINF:")
	b.WriteString(micros(e.Duration))
	b.WriteString(",\n")
	b.WriteString(SegmentName(e.N))
	b.WriteByte('\n')
	// Durations are written exactly (microseconds), so that the VOD timeline adds up;
	// the target duration covers each of them rounded up.
	p.target = max(p.target, int(math.Ceil(e.Duration.Seconds()-1e-6)))
	p.count++
}

// render returns the playlist: an EVENT playlist while recording, a VOD playlist with
// EXT-X-ENDLIST once ended.
func (p *playlist) render(ended bool) []byte {
	var b bytes.Buffer
	b.Grow(160 + p.body.Len())
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:")
	b.WriteString(strconv.Itoa(p.target))
	b.WriteString("\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:")
	if ended {
		b.WriteString("VOD\n")
	} else {
		b.WriteString("EVENT\n")
	}
	b.Write(p.body.Bytes())
	if ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.Bytes()
}

// micros formats d in seconds with microseconds.
func micros(d time.Duration) string {
	return strconv.FormatFloat(d.Round(time.Microsecond).Seconds(), 'f', 6, 64)
}

// parseSeconds reads a non-negative decimal number of seconds.
func parseSeconds(s string) (time.Duration, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > 1e9 || math.IsNaN(v) {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	return time.Duration(math.Round(v*1e6)) * time.Microsecond, nil
}

// parseIndex reads "prefix{N}suffix" and returns N.
func parseIndex(s, prefix, suffix string) (int, bool) {
	if !strings.HasPrefix(s, prefix) || !strings.HasSuffix(s, suffix) {
		return 0, false
	}
	v := s[len(prefix) : len(s)-len(suffix)]
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || strconv.Itoa(n) != v {
		return 0, false
	}
	return n, true
}

// parsePlaylist reads a playlist written by playlist.render: the segments with their
// init segment, start, duration and discontinuities, and whether it has ended. Segment
// sizes are left zero.
func parsePlaylist(b []byte) ([]segmentEntry, bool, error) {
	var out []segmentEntry
	ended := false
	init := -1
	disc := false
	var dur time.Duration
	haveDur := false
	var start time.Duration
	haveStart := false
	var wall time.Time
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 256), maxPlaylistLine)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "":
		case line == 1:
			if l != "#EXTM3U" {
				return nil, false, errors.New("playlist: no #EXTM3U header")
			}
		case l == "#EXT-X-DISCONTINUITY":
			disc = true
		case l == "#EXT-X-ENDLIST":
			ended = true
		case strings.HasPrefix(l, "#EXT-X-MAP:"):
			uri, ok := strings.CutPrefix(l, `#EXT-X-MAP:URI="`)
			uri, ok2 := strings.CutSuffix(uri, `"`)
			k, ok3 := parseIndex(uri, "init-", ".mp4")
			if !ok || !ok2 || !ok3 {
				return nil, false, fmt.Errorf("playlist line %d: bad map %q", line, l)
			}
			init = k
		case strings.HasPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"):
			t, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(l, "#EXT-X-PROGRAM-DATE-TIME:"))
			if err == nil {
				wall = t
			}
		case strings.HasPrefix(l, startTag):
			d, err := parseSeconds(strings.TrimPrefix(l, startTag))
			if err != nil {
				return nil, false, fmt.Errorf("playlist line %d: %w", line, err)
			}
			start, haveStart = d, true
		case strings.HasPrefix(l, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(l, "#EXTINF:"), ",")
			d, err := parseSeconds(v)
			if err != nil {
				return nil, false, fmt.Errorf("playlist line %d: %w", line, err)
			}
			dur, haveDur = d, true
		case strings.HasPrefix(l, "#"):
			// another tag or a comment
		default:
			n, ok := parseIndex(l, "seg-", ".m4s")
			if !ok || !haveDur || init < 0 {
				return nil, false, fmt.Errorf("playlist line %d: unexpected %q", line, l)
			}
			if len(out) >= maxPlaylistSegments {
				return nil, false, fmt.Errorf("playlist: more than %d segments", maxPlaylistSegments)
			}
			e := segmentEntry{N: n, Init: init, Duration: dur, Disc: disc && len(out) > 0, Wall: wall}
			switch {
			case haveStart:
				e.Start = start
			case len(out) > 0:
				e.Start = out[len(out)-1].end()
			}
			out = append(out, e)
			disc, haveDur, haveStart, wall = false, false, false, time.Time{}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, false, fmt.Errorf("playlist: %w", err)
	}
	if line == 0 {
		return nil, false, errors.New("playlist: empty")
	}
	return out, ended, nil
}

// finalPlaylist returns b as a VOD playlist: a playlist left as EVENT by a recording that
// could not write its last version (full disk, crash) is served as ended.
func finalPlaylist(b []byte) []byte {
	if bytes.Contains(b, []byte("\n#EXT-X-ENDLIST")) {
		return b
	}
	out := bytes.Replace(b, []byte("#EXT-X-PLAYLIST-TYPE:EVENT\n"), []byte("#EXT-X-PLAYLIST-TYPE:VOD\n"), 1)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, "#EXT-X-ENDLIST\n"...)
}

// FinalPlaylist returns a stored playlist as a VOD playlist (see finalPlaylist): the
// server uses it for recordings that are not being written any more.
func FinalPlaylist(b []byte) []byte { return finalPlaylist(bytes.Clone(b)) }

// PrefixPlaylist returns the playlist b with prefix put in front of every URI (segments
// and init segments), so that it can be served from another path.
func PrefixPlaylist(b []byte, prefix string) []byte {
	var out bytes.Buffer
	out.Grow(len(b) + 64 + len(prefix)*bytes.Count(b, []byte("\n"))/2)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		var l []byte
		if i < 0 {
			l, b = b, nil
		} else {
			l, b = b[:i], b[i+1:]
		}
		switch {
		case len(l) == 0:
		case l[0] != '#':
			out.WriteString(prefix)
		case bytes.HasPrefix(l, []byte(`#EXT-X-MAP:URI="`)):
			out.WriteString(`#EXT-X-MAP:URI="`)
			out.WriteString(prefix)
			l = l[len(`#EXT-X-MAP:URI="`):]
		}
		out.Write(l)
		out.WriteByte('\n')
	}
	return out.Bytes()
}
