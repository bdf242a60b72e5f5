package cmaf

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg1audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/testutil"
	"github.com/onair/onair/internal/unit"
)

// media is a demuxed real stream: its tracks and its units in DTS order across tracks,
// rebased so the smallest DTS is 0, as the hub delivers them.
type media struct {
	tracks []*unit.Track
	units  []*unit.Unit
}

var (
	mediaMu    sync.Mutex
	mediaCache = map[string]*mediaEntry{}
)

type mediaEntry struct {
	once sync.Once
	m    *media
}

// cachedMedia returns the media made by fn for key, made once per test binary. Units are
// immutable, so tests share them.
func cachedMedia(tb testing.TB, key string, fn func() *media) *media {
	tb.Helper()
	mediaMu.Lock()
	e, ok := mediaCache[key]
	if !ok {
		e = &mediaEntry{}
		mediaCache[key] = e
	}
	mediaMu.Unlock()
	e.once.Do(func() { e.m = fn() })
	if e.m == nil {
		tb.Fatalf("making media %q failed in another test", key)
	}
	return e.m
}

// mustEncode runs ffmpeg with args and the output file name appended, in a temp dir.
func mustEncode(tb testing.TB, name string, args ...string) string {
	tb.Helper()
	testutil.RequireFFmpeg(tb)
	out := filepath.Join(tb.TempDir(), name)
	cmd := exec.Command("ffmpeg", append(append([]string{"-hide_banner", "-v", "error", "-y"}, args...), out)...)
	b, err := cmd.CombinedOutput()
	require.NoError(tb, err, "ffmpeg: %s", b)
	return out
}

// lavfi returns ffmpeg input args for a test picture and/or a tone.
func lavfi(size string, fps int, sampleRate int, seconds float64) []string {
	var args []string
	if size != "" {
		args = append(args, testutil.LavfiInput(true, false, size, fps, 0)...)
	}
	if sampleRate > 0 {
		args = append(args, testutil.LavfiInput(false, true, "", 0, sampleRate)...)
	}
	return append(args, "-t", strconv.FormatFloat(seconds, 'f', -1, 64))
}

func ticksToDur(ticks int64, rate int64) time.Duration {
	return time.Duration(ticks * int64(time.Second) / rate)
}

// mustReadTS demuxes an MPEG-TS file into tracks and units, the way the ingest delivers
// them: key H.264/H.265 units carry their parameter sets in band.
func mustReadTS(tb testing.TB, path string) *media {
	tb.Helper()
	f, err := os.Open(path)
	require.NoError(tb, err)
	defer f.Close()

	r := &mpegts.Reader{R: f}
	require.NoError(tb, r.Initialize())

	m := &media{}
	add := func(track int, pts, dts int64, key bool, payload [][]byte) {
		size := 0
		for _, p := range payload {
			size += len(p)
		}
		m.units = append(m.units, &unit.Unit{
			Track: track, PTS: ticksToDur(pts, 90000), DTS: ticksToDur(dts, 90000),
			Key: key, Payload: payload, Size: size,
		})
	}

	for _, tt := range r.Tracks() {
		idx := len(m.tracks)
		switch c := tt.Codec.(type) {
		case *tscodecs.H264:
			track := &unit.Track{Codec: unit.CodecH264}
			m.tracks = append(m.tracks, track)
			r.OnDataH264(tt, func(pts, dts int64, au [][]byte) error {
				for _, n := range au {
					switch h264.NALUType(n[0] & 0x1f) {
					case h264.NALUTypeSPS:
						if track.SPS == nil {
							track.SPS = bytes.Clone(n)
						}
					case h264.NALUTypePPS:
						if track.PPS == nil {
							track.PPS = bytes.Clone(n)
						}
					}
				}
				add(idx, pts, dts, h264.IsRandomAccess(au), au)
				return nil
			})
		case *tscodecs.H265:
			track := &unit.Track{Codec: unit.CodecH265}
			m.tracks = append(m.tracks, track)
			r.OnDataH265(tt, func(pts, dts int64, au [][]byte) error {
				for _, n := range au {
					switch h265.NALUType((n[0] >> 1) & 0x3f) {
					case h265.NALUType_VPS_NUT:
						if track.VPS == nil {
							track.VPS = bytes.Clone(n)
						}
					case h265.NALUType_SPS_NUT:
						if track.SPS == nil {
							track.SPS = bytes.Clone(n)
						}
					case h265.NALUType_PPS_NUT:
						if track.PPS == nil {
							track.PPS = bytes.Clone(n)
						}
					}
				}
				add(idx, pts, dts, h265.IsRandomAccess(au), au)
				return nil
			})
		case *tscodecs.MPEG4Audio:
			asc, err := c.Config.Marshal()
			require.NoError(tb, err)
			rate := int64(c.Config.SampleRate)
			m.tracks = append(m.tracks, &unit.Track{
				Codec: unit.CodecAAC, AACConfig: asc, SampleRate: c.Config.SampleRate,
				ChannelCount: int(c.Config.ChannelConfig),
			})
			r.OnDataMPEG4Audio(tt, func(pts int64, aus [][]byte) error {
				for i, au := range aus {
					ts := pts + int64(i)*mpeg4audio.SamplesPerAccessUnit*90000/rate
					add(idx, ts, ts, true, [][]byte{au})
				}
				return nil
			})
		case *tscodecs.Opus:
			channels := 2
			if c.Desc != nil && c.Desc.ChannelConfigCode >= 1 && c.Desc.ChannelConfigCode <= 8 {
				channels = int(c.Desc.ChannelConfigCode)
			}
			m.tracks = append(m.tracks, &unit.Track{Codec: unit.CodecOpus, SampleRate: 48000, ChannelCount: channels})
			r.OnDataOpus(tt, func(pts int64, packets [][]byte) error {
				for _, p := range packets {
					add(idx, pts, pts, true, [][]byte{p})
					pts += opusDuration(p) * 90000 / 48000
				}
				return nil
			})
		case *tscodecs.MPEG1Audio:
			track := &unit.Track{Codec: unit.CodecMP3}
			m.tracks = append(m.tracks, track)
			r.OnDataMPEG1Audio(tt, func(pts int64, frames [][]byte) error {
				for _, fr := range frames {
					var h mpeg1audio.FrameHeader
					require.NoError(tb, h.Unmarshal(fr))
					if track.SampleRate == 0 {
						track.SampleRate = h.SampleRate
						track.ChannelCount = 2
						if h.ChannelMode == mpeg1audio.ChannelModeMono {
							track.ChannelCount = 1
						}
					}
					add(idx, pts, pts, true, [][]byte{fr})
					pts += int64(h.SampleCount()) * 90000 / int64(h.SampleRate)
				}
				return nil
			})
		default:
			tb.Fatalf("unexpected codec %T", c)
		}
	}
	for {
		err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(tb, err)
	}
	m.finish(tb)
	return m
}

// mustReadFMP4 reads a fragmented MP4 file (for AV1, which the MPEG-TS reader lacks).
func mustReadFMP4(tb testing.TB, path string) *media {
	tb.Helper()
	data, err := os.ReadFile(path)
	require.NoError(tb, err)
	var init fmp4.Init
	require.NoError(tb, init.Unmarshal(bytes.NewReader(data)))
	var parts fmp4.Parts
	require.NoError(tb, parts.Unmarshal(data))

	m := &media{}
	byID := map[int]int{}
	rates := map[int]int64{}
	for _, it := range init.Tracks {
		byID[it.ID] = len(m.tracks)
		rates[it.ID] = int64(it.TimeScale)
		switch c := it.Codec.(type) {
		case *codecs.AV1:
			m.tracks = append(m.tracks, &unit.Track{Codec: unit.CodecAV1, AV1SequenceHeader: c.SequenceHeader})
		case *codecs.Opus:
			m.tracks = append(m.tracks, &unit.Track{Codec: unit.CodecOpus, SampleRate: 48000, ChannelCount: c.ChannelCount})
		case *codecs.MPEG4Audio:
			asc, err := c.Config.Marshal()
			require.NoError(tb, err)
			m.tracks = append(m.tracks, &unit.Track{Codec: unit.CodecAAC, AACConfig: asc, SampleRate: c.Config.SampleRate})
		default:
			tb.Fatalf("unexpected codec %T", c)
		}
	}
	for _, p := range parts {
		for _, pt := range p.Tracks {
			idx := byID[pt.ID]
			rate := rates[pt.ID]
			dts := int64(pt.BaseTime)
			for _, s := range pt.Samples {
				// mediacommon's reader ignores trun first_sample_flags: take key frames
				// from the bitstream.
				var payload [][]byte
				key := true
				if m.tracks[idx].Codec == unit.CodecAV1 {
					var bs av1.Bitstream
					require.NoError(tb, bs.Unmarshal(s.Payload))
					payload = bs
					key, err = av1.IsRandomAccess(bs)
					require.NoError(tb, err)
				} else {
					payload = [][]byte{s.Payload}
				}
				m.units = append(m.units, &unit.Unit{
					Track: idx, DTS: ticksToDur(dts, rate), PTS: ticksToDur(dts+int64(s.PTSOffset), rate),
					Key: key, Payload: payload, Size: len(s.Payload),
				})
				dts += int64(s.Duration)
			}
		}
	}
	m.finish(tb)
	return m
}

func opusDuration(p []byte) int64 {
	// RFC 6716, 3.1: frame size from the TOC config, frame count from the code.
	sizes := [32]int64{480, 960, 1920, 2880, 480, 960, 1920, 2880, 480, 960, 1920, 2880, 480, 960, 480, 960,
		120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960}
	n := int64(1)
	switch p[0] & 3 {
	case 1, 2:
		n = 2
	case 3:
		n = int64(p[1] & 0x3f)
	}
	return sizes[p[0]>>3] * n
}

// finish sorts the units by DTS (stable per track), rebases them to start at 0 and puts
// the parameter sets in band on key units that lack them.
func (m *media) finish(tb testing.TB) {
	tb.Helper()
	require.NotEmpty(tb, m.units)
	slices.SortStableFunc(m.units, func(a, b *unit.Unit) int {
		return int(a.DTS - b.DTS)
	})
	base := m.units[0].DTS
	for _, u := range m.units {
		u.DTS -= base
		u.PTS -= base
		tr := m.tracks[u.Track]
		if !u.Key || (tr.Codec != unit.CodecH264 && tr.Codec != unit.CodecH265) {
			continue
		}
		hasSPS := false
		for _, n := range u.Payload {
			if (tr.Codec == unit.CodecH264 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS) ||
				(tr.Codec == unit.CodecH265 && h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_SPS_NUT) {
				hasSPS = true
			}
		}
		if !hasSPS {
			ps := [][]byte{tr.SPS, tr.PPS}
			if tr.Codec == unit.CodecH265 {
				ps = [][]byte{tr.VPS, tr.SPS, tr.PPS}
			}
			u.Payload = append(ps, u.Payload...)
		}
	}
}

// output is everything a Segmenter emitted.
type output struct {
	inits    [][]byte
	parts    []*Part
	segments []*Segment
	// initBefore[i] is the number of inits emitted before part i.
	initBefore []int
}

func (o *output) attach(s *Segmenter) {
	s.OnInit = func(b []byte) { o.inits = append(o.inits, b) }
	s.OnPart = func(p *Part) {
		o.parts = append(o.parts, p)
		o.initBefore = append(o.initBefore, len(o.inits))
	}
	s.OnSegment = func(seg *Segment) { o.segments = append(o.segments, seg) }
}

// mustSegment runs units through a Segmenter configured by cfg and closes it.
func mustSegment(tb testing.TB, m *media, cfg func(*Segmenter)) *output {
	tb.Helper()
	o := &output{}
	s := &Segmenter{Tracks: m.tracks}
	if cfg != nil {
		cfg(s)
	}
	o.attach(s)
	require.NoError(tb, s.Start())
	for _, u := range m.units {
		require.NoError(tb, s.WriteUnit(u))
	}
	s.Close()
	return o
}

// mustWriteMP4 writes an init segment and parts into a file.
func mustWriteMP4(tb testing.TB, init []byte, parts []*Part) string {
	tb.Helper()
	b := slices.Clone(init)
	for _, p := range parts {
		b = append(b, p.Data...)
	}
	path := filepath.Join(tb.TempDir(), "out.mp4")
	require.NoError(tb, os.WriteFile(path, b, 0o600))
	return path
}

type probeStream struct {
	Index     int    `json:"index"`
	CodecName string `json:"codec_name"`
	CodecType string `json:"codec_type"`
	Frames    string `json:"nb_read_frames"`
	Packets   string `json:"nb_read_packets"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
}

// mustProbe returns the streams of a file, counting packets.
func mustProbe(tb testing.TB, path string) []probeStream {
	tb.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-show_streams", "-of", "json", path).Output()
	require.NoError(tb, err)
	var res struct {
		Streams []probeStream `json:"streams"`
	}
	require.NoError(tb, json.Unmarshal(out, &res))
	return res.Streams
}

type probePacket struct {
	PTS      int64  `json:"pts"`
	DTS      int64  `json:"dts"`
	Duration int64  `json:"duration"`
	Flags    string `json:"flags"`
}

// mustProbePackets returns the packets of one stream ("v:0", "a:0") in decode order, with
// timestamps in the stream time base, and the time base's denominator.
func mustProbePackets(tb testing.TB, path, stream string) []probePacket {
	tb.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", stream,
		"-show_entries", "packet=pts,dts,duration,flags", "-of", "json", path).Output()
	require.NoError(tb, err)
	var res struct {
		Packets []probePacket `json:"packets"`
	}
	require.NoError(tb, json.Unmarshal(out, &res))
	return res.Packets
}

// mustProbeFramePTS decodes a stream and returns the PTS of its frames in presentation
// order, as the decoder outputs them.
func mustProbeFramePTS(tb testing.TB, path, stream string) []int64 {
	tb.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", stream,
		"-show_entries", "frame=pts", "-of", "json", path).Output()
	require.NoError(tb, err)
	var res struct {
		Frames []struct {
			PTS int64 `json:"pts"`
		} `json:"frames"`
	}
	require.NoError(tb, json.Unmarshal(out, &res))
	pts := make([]int64, len(res.Frames))
	for i, f := range res.Frames {
		pts[i] = f.PTS
	}
	return pts
}
