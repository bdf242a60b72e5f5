// Package source adapts the media side (the hub and the RTMP server) to stats.Source, so
// that package stats itself imports no media package. Only app uses it.
package source

import (
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/rtmp"
	"github.com/onair/onair/internal/stats"
	"github.com/onair/onair/internal/unit"
)

// Media implements stats.Source for a hub and an RTMP server.
type Media struct {
	// Hub is the registry of live streams. Required.
	Hub *hub.Registry
	// RTMP is the RTMP server; nil reports no connections.
	RTMP *rtmp.Server
}

var _ stats.Source = (*Media)(nil)

// RelayFlashVer labels, in /stat, the connection that pulls a relayed stream from its
// origin node (an outgoing connection, which has no flashVer of its own).
const RelayFlashVer = "onair relay"

// Snapshot implements stats.Source.
//
// Derived streams (transcoded renditions, "alice~720p") are no channels: they are left
// out, and their readers, bytes sent and drops counted with their source stream, as are
// RTMP players of a rendition. Relayed streams (pulled from their origin node) are listed
// like any stream, with Relay set; their pull is the publishing client, labelled
// RelayFlashVer.
func (m *Media) Snapshot() stats.Snapshot {
	var snap stats.Snapshot
	var derived []hub.Info
	relays := make(map[string]bool)
	for _, st := range m.Hub.Streams() {
		switch st.Source() {
		case hub.SourceDerived:
			derived = append(derived, st.Info())
			continue
		case hub.SourceRelay:
			relays[st.Name()] = true
		}
		s := streamOf(st.Info())
		s.Relay = st.Source() == hub.SourceRelay
		snap.Streams = append(snap.Streams, s)
	}
	for _, in := range derived {
		if i := indexOf(snap.Streams, sourceOf(in.Name)); i >= 0 {
			addDerived(&snap.Streams[i], in)
		}
	}
	snap.Dropped = m.Hub.Dropped()
	if m.RTMP != nil {
		ss := m.RTMP.Stats()
		snap.Accepted, snap.BytesIn, snap.BytesOut = ss.Accepted, ss.BytesIn, ss.BytesOut
		conns := m.RTMP.Conns()
		snap.Conns = make([]stats.Conn, len(conns))
		for i, c := range conns {
			channel, flashVer := sourceOf(c.Channel), c.FlashVer
			if flashVer == "" && c.State == rtmp.ConnPublishing && relays[channel] {
				flashVer = RelayFlashVer
			}
			snap.Conns[i] = stats.Conn{
				ID:        c.ID,
				Addr:      c.RemoteAddr,
				Start:     c.Start,
				FlashVer:  flashVer,
				State:     string(c.State),
				Channel:   channel,
				Active:    c.Active,
				BytesIn:   c.BytesIn,
				BytesOut:  c.BytesOut,
				Dropped:   c.Dropped,
				Timestamp: c.Timestamp,
				AVSync:    c.AVSync,
			}
		}
	}
	return snap
}

// sourceOf returns the stream a derived stream is made from (its name up to the
// rendition separator); other names are returned as they are.
func sourceOf(name string) string {
	src, _, _ := hub.SplitDerived(name)
	return src
}

func indexOf(streams []stats.Stream, name string) int {
	for i := range streams {
		if streams[i].Name == name {
			return i
		}
	}
	return -1
}

// addDerived counts a rendition's readers, bytes sent and drops with its source stream.
func addDerived(st *stats.Stream, in hub.Info) {
	st.BytesOut += in.BytesOut
	if len(in.Readers) > 0 && st.Readers == nil {
		st.Readers = make(map[string]int, len(in.Readers))
	}
	for k, n := range in.Readers {
		st.Readers[k] += n
	}
	if len(in.Dropped) > 0 && st.Dropped == nil {
		st.Dropped = make(map[string]uint64, len(in.Dropped))
	}
	for k, n := range in.Dropped {
		st.Dropped[k] += n
	}
}

func streamOf(in hub.Info) stats.Stream {
	st := stats.Stream{
		Name:             in.Name,
		StartedAt:        in.StartedAt,
		Publishing:       in.Publishing,
		BytesIn:          in.BytesIn,
		BytesOut:         in.BytesOut,
		VideoBitrate:     in.VideoKbps * 1000,
		AudioBitrate:     in.AudioKbps * 1000,
		FPS:              in.FPS,
		KeyframeInterval: in.KeyframeInterval,
		Readers:          in.Readers,
		Dropped:          in.Dropped,
	}
	for _, t := range in.Tracks {
		if t == nil {
			continue
		}
		if t.IsVideo() && st.Video == nil {
			st.Video = VideoMeta(t)
		} else if !t.IsVideo() && st.Audio == nil {
			st.Audio = AudioMeta(t)
		}
	}
	return st
}

// VideoMeta describes a video track as nginx-rtmp's /stat does: codec name, size,
// profile, compatibility byte (H.264 constraint flags) and level.
func VideoMeta(t *unit.Track) *stats.VideoMeta {
	v := &stats.VideoMeta{Width: t.Width, Height: t.Height}
	switch t.Codec {
	case unit.CodecH264:
		v.Codec = "H264"
		var sps h264.SPS
		if sps.Unmarshal(t.SPS) == nil {
			v.Profile = h264Profile(sps.ProfileIdc)
			for i, f := range []bool{sps.ConstraintSet0Flag, sps.ConstraintSet1Flag, sps.ConstraintSet2Flag,
				sps.ConstraintSet3Flag, sps.ConstraintSet4Flag, sps.ConstraintSet5Flag} {
				if f {
					v.Compat |= 0x80 >> i
				}
			}
			if sps.LevelIdc > 0 {
				v.Level = fmt.Sprintf("%.1f", float64(sps.LevelIdc)/10)
			}
		}
	case unit.CodecH265:
		v.Codec = "HEVC"
		var sps h265.SPS
		if sps.Unmarshal(t.SPS) == nil {
			ptl := sps.ProfileTierLevel
			v.Profile = h265Profile(ptl.GeneralProfileIdc)
			if ptl.GeneralLevelIdc > 0 {
				v.Level = fmt.Sprintf("%.1f", float64(ptl.GeneralLevelIdc)/30)
			}
		}
	case unit.CodecAV1:
		v.Codec = "AV1"
	default:
		v.Codec = t.Codec.String()
	}
	return v
}

func h264Profile(idc uint8) string {
	switch idc {
	case 66:
		return "Baseline"
	case 77:
		return "Main"
	case 88:
		return "Extended"
	case 100:
		return "High"
	case 110:
		return "High 10"
	case 122:
		return "High 4:2:2"
	case 244:
		return "High 4:4:4"
	}
	return ""
}

func h265Profile(idc uint8) string {
	switch idc {
	case 1:
		return "Main"
	case 2:
		return "Main 10"
	case 3:
		return "Main Still Picture"
	case 4:
		return "RExt"
	}
	return ""
}

// AudioMeta describes an audio track as nginx-rtmp's /stat does.
func AudioMeta(t *unit.Track) *stats.AudioMeta {
	a := &stats.AudioMeta{Channels: t.ChannelCount, SampleRate: t.SampleRate}
	switch t.Codec {
	case unit.CodecAAC:
		a.Codec = "AAC"
		var c mpeg4audio.AudioSpecificConfig
		if c.Unmarshal(t.AACConfig) == nil {
			a.Profile = aacProfile(&c)
		}
	case unit.CodecMP3:
		a.Codec = "MP3"
	case unit.CodecOpus:
		a.Codec = "Opus"
	default:
		a.Codec = t.Codec.String()
	}
	return a
}

func aacProfile(c *mpeg4audio.AudioSpecificConfig) string {
	switch {
	case c.ExtensionType == mpeg4audio.ObjectTypePS:
		return "HEv2"
	case c.ExtensionType == mpeg4audio.ObjectTypeSBR:
		return "HE"
	case c.Type == 1:
		return "Main"
	case c.Type == mpeg4audio.ObjectTypeAACLC:
		return "LC"
	case c.Type == 3:
		return "SSR"
	case c.Type == 4:
		return "LTP"
	}
	return ""
}

// CMAFBuildTime returns how long after the end of its media a CMAF segment was published:
// when its last part was produced, minus the wall-clock time of the segment's end. This
// is what stats.Collector.ObserveCMAFSegment expects. A negative result (clock anchoring
// jitter) is reported as zero.
func CMAFBuildTime(sg *cmafstream.Segment) time.Duration {
	if len(sg.Parts) == 0 || sg.Wall.IsZero() {
		return 0
	}
	last := sg.Parts[len(sg.Parts)-1]
	if last.Produced.IsZero() {
		return 0
	}
	return max(last.Produced.Sub(sg.Wall.Add(sg.Duration)), 0)
}
