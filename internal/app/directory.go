package app

import (
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/stats"
)

// directory adapts the hub to onair.LiveDirectory.
//
// Viewers are RTMP players plus HLS and DASH viewer sessions (see stats.Sessions: a
// per-viewer id that the multivariant playlist hands out, else the client address and
// User-Agent). Watch pages play HLS or DASH, so they are counted there.
type directory struct {
	hub     *hub.Registry
	viewers func(channel string, rtmpPlayers int) stats.Viewers
}

func (d *directory) LiveStreams() []onair.LiveStream {
	streams := d.hub.Streams()
	out := make([]onair.LiveStream, 0, len(streams))
	for _, st := range streams {
		if st.Source() == hub.SourceDerived {
			continue // a transcoded rendition is part of its source's stream
		}
		out = append(out, d.liveStream(st.Info()))
	}
	return out
}

func (d *directory) LiveStream(name string) (onair.LiveStream, bool) {
	st := d.hub.Stream(name)
	if st == nil || st.Source() == hub.SourceDerived {
		return onair.LiveStream{}, false
	}
	return d.liveStream(st.Info()), true
}

func (d *directory) liveStream(in hub.Info) onair.LiveStream {
	ls := onair.LiveStream{
		Channel:          in.Name,
		StartedAt:        in.StartedAt.UTC(),
		Publishing:       in.Publishing,
		FPS:              round1(in.FPS),
		VideoKbps:        round1(in.VideoKbps),
		AudioKbps:        round1(in.AudioKbps),
		BitrateKbps:      round1(in.VideoKbps + in.AudioKbps),
		KeyframeInterval: round1(in.KeyframeInterval.Seconds()),
		Viewers:          in.Readers["rtmp"],
	}
	if d.viewers != nil {
		ls.Viewers = d.viewers(in.Name, in.Readers["rtmp"]).Total
	}
	for _, t := range in.Tracks {
		if t.IsVideo() {
			if ls.VideoCodec == "" {
				ls.VideoCodec = t.Codec.String()
				ls.Width, ls.Height = t.Width, t.Height
			}
		} else if ls.AudioCodec == "" {
			ls.AudioCodec = t.Codec.String()
			ls.SampleRate, ls.Channels = t.SampleRate, t.ChannelCount
		}
	}
	return ls
}

func round1(v float64) float64 {
	return float64(int64(v*10+0.5)) / 10
}
