package hls

import (
	"bytes"
	"strconv"
	"time"
)

// playlist is what a media playlist shows.
type playlist struct {
	target        int    // EXT-X-TARGETDURATION, seconds
	mediaSequence uint64 // sequence number of segments[0]
	discSequence  uint64 // discontinuities before segments[0]
	segments      []*segment
	ended         bool
}

// renderPlaylist writes a media playlist (RFC 8216 section 4.3). Version 3 allows
// decimal EXTINF durations; EXT-X-PROGRAM-DATE-TIME has no version requirement.
func renderPlaylist(p playlist) []byte {
	var b bytes.Buffer
	b.Grow(128 + 110*len(p.segments))
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:")
	b.WriteString(strconv.Itoa(p.target))
	b.WriteString("\n#EXT-X-MEDIA-SEQUENCE:")
	b.WriteString(strconv.FormatUint(p.mediaSequence, 10))
	b.WriteByte('\n')
	if p.discSequence > 0 {
		b.WriteString("#EXT-X-DISCONTINUITY-SEQUENCE:")
		b.WriteString(strconv.FormatUint(p.discSequence, 10))
		b.WriteByte('\n')
	}
	for _, s := range p.segments {
		if s.discontinuity {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		b.WriteString("#EXT-X-PROGRAM-DATE-TIME:")
		b.WriteString(s.start.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
		b.WriteString("\n#EXTINF:")
		b.WriteString(strconv.FormatFloat(s.duration.Round(time.Millisecond).Seconds(), 'f', 3, 64))
		b.WriteString(",\n")
		b.WriteString(s.name)
		b.WriteByte('\n')
	}
	if p.ended {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return b.Bytes()
}
