package record

import (
	"errors"

	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/unit"
)

// maxTrack bounds the track index of the DASH names (see ParseTrackName).
const maxTrack = 15

var errNoTrack = errors.New("no such track")

// TrackInit returns the stored init segment init with only track t (0-based) in it: the
// DASH manifest lists every track as its own Representation. The split is
// cmafstream's, the one live DASH uses.
func TrackInit(init []byte, t int) ([]byte, error) {
	if t < 0 || t > maxTrack {
		return nil, errNoTrack
	}
	in := &cmafstream.Init{Tracks: make([]*unit.Track, t+1), Data: init}
	return in.Track(t)
}

// TrackSegment returns the stored segment seg (moof+mdat fragments) with only the
// samples of track t, fragment by fragment.
func TrackSegment(seg []byte, t int) ([]byte, error) {
	if t < 0 || t > maxTrack {
		return nil, errNoTrack
	}
	frags, err := fragments(seg)
	if err != nil {
		return nil, err
	}
	in := &cmafstream.Init{Tracks: make([]*unit.Track, t+1)}
	var out []byte
	for _, f := range frags {
		p := &cmafstream.Part{Init: in, Data: f}
		out = append(out, p.Track(t).Data...)
	}
	return out, nil
}
