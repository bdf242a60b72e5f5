package record

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/onair/onair/internal/cmaf"
	"github.com/onair/onair/internal/unit"
)

// recordingMeta is meta.json: what the DASH manifest needs to know about the tracks of
// each init segment, which the init segments hold only in binary form. It is rewritten
// (atomically) with each new init segment.
type recordingMeta struct {
	Version int        `json:"version"`
	Inits   []initMeta `json:"inits"`
}

// metaVersion is the version of the meta.json format.
const metaVersion = 1

// maxMetaSize bounds meta.json when it is read back.
const maxMetaSize = 1 << 20

type initMeta struct {
	Tracks []trackMeta `json:"tracks"`
}

type trackMeta struct {
	Video      bool   `json:"video"`
	Codec      string `json:"codec"` // RFC 6381, e.g. "avc1.64001f"
	Timescale  int64  `json:"timescale"`
	Width      int    `json:"width,omitempty"`
	Height     int    `json:"height,omitempty"`
	SampleRate int    `json:"sample_rate,omitempty"`
	Channels   int    `json:"channels,omitempty"`
}

// trackMetaOf describes a track as the init segment does: 90 kHz for video, the sample
// rate for audio (48 kHz for Opus or when unknown).
func trackMetaOf(t *unit.Track) trackMeta {
	m := trackMeta{Video: t.IsVideo(), Codec: cmaf.Codec(t)}
	switch {
	case m.Video:
		m.Timescale = 90000
		m.Width, m.Height = cmaf.Resolution([]*unit.Track{t})
	case t.Codec == unit.CodecOpus:
		m.Timescale = 48000
	case t.SampleRate > 0:
		m.Timescale = int64(t.SampleRate)
	default:
		m.Timescale = 48000
	}
	if !m.Video {
		m.SampleRate, m.Channels = t.SampleRate, t.ChannelCount
	}
	return m
}

func parseMeta(b []byte) (*recordingMeta, error) {
	if len(b) > maxMetaSize {
		return nil, fmt.Errorf("meta: %d bytes over the limit of %d", len(b), maxMetaSize)
	}
	var m recordingMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("meta: %w", err)
	}
	if m.Version != metaVersion {
		return nil, fmt.Errorf("meta: unknown version %d", m.Version)
	}
	for _, in := range m.Inits {
		for _, t := range in.Tracks {
			if t.Timescale <= 0 || t.Timescale > 1<<31 {
				return nil, errors.New("meta: bad timescale")
			}
		}
	}
	return &m, nil
}
