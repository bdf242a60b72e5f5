package testutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg1audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/unit"
)

// Media is real media made by ffmpeg and demuxed into hub units, as the ingest delivers them:
// video key units carry their parameter sets in band.
type Media struct {
	Tracks []*unit.Track
	// Units are sorted by DTS, the first at 0. They are templates: PublishMedia copies them.
	Units []*unit.Unit
	// Length is the duration, up to about the end of the last frame.
	Length time.Duration
}

// mediaArgs are the ffmpeg encoder arguments per media kind (inputs come from lavfi).
var mediaArgs = map[string][]string{
	"h264_aac": {"-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast", "-g", "30",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k"},
	"h264_mp3": {"-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
		"-pix_fmt", "yuv420p", "-c:a", "libmp3lame", "-ar", "44100", "-ac", "1"},
	"h265_aac": {"-map", "0:v", "-map", "1:a", "-c:v", "libx265", "-preset", "ultrafast",
		"-x265-params", "keyint=30:min-keyint=30:log-level=error", "-pix_fmt", "yuv420p", "-c:a", "aac"},
	"h264_opus": {"-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
		"-pix_fmt", "yuv420p", "-c:a", "libopus", "-ar", "48000"},
	"aac": {"-map", "1:a", "-c:a", "aac"},
	"mp3": {"-map", "1:a", "-c:a", "libmp3lame", "-ar", "44100", "-ac", "1"},
}

var (
	mediaMu    sync.Mutex
	mediaCache = map[string]*Media{}
)

// MustMedia returns 4 s of media of the given kind, made once per test binary: "h264_aac",
// "h264_mp3", "h265_aac", "h264_opus", "aac" or "mp3". It skips the test without ffmpeg
// (see RequireFFmpeg). ffmpeg writes to a pipe: no file is left behind.
func MustMedia(tb testing.TB, kind string) *Media {
	tb.Helper()
	RequireFFmpeg(tb)
	mediaMu.Lock()
	defer mediaMu.Unlock()
	if m := mediaCache[kind]; m != nil {
		return m
	}
	args, ok := mediaArgs[kind]
	require.True(tb, ok, "unknown media kind %q", kind)
	cmd := exec.Command("ffmpeg", append(append([]string{"-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"}, args...),
		"-t", "4", "-f", "mpegts", "-")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	ts, err := cmd.Output()
	require.NoError(tb, err, "ffmpeg: %s", stderr.String())
	m, err := DemuxTS(bytes.NewReader(ts))
	require.NoError(tb, err, "demux %s", kind)
	mediaCache[kind] = m
	return m
}

// DemuxTS reads MPEG-TS into hub tracks and units. Video key units carry their
// parameter sets in band, as the RTMP ingest makes them.
func DemuxTS(rd io.Reader) (*Media, error) {
	r := &mpegts.Reader{R: rd}
	if err := r.Initialize(); err != nil {
		return nil, fmt.Errorf("read ts: %w", err)
	}
	type raw struct {
		track    int
		dts, pts int64 // 90 kHz, or ns for audio computed below
		key      bool
		payload  [][]byte
	}
	var raws []raw
	med := &Media{}
	for _, tt := range r.Tracks() {
		ti := len(med.Tracks)
		switch c := tt.Codec.(type) {
		case *tscodecs.H264:
			tr := &unit.Track{Codec: unit.CodecH264}
			med.Tracks = append(med.Tracks, tr)
			r.OnDataH264(tt, func(pts, dts int64, au [][]byte) error {
				var sps, pps []byte
				for _, n := range au {
					switch h264.NALUType(n[0] & 0x1f) {
					case h264.NALUTypeSPS:
						sps = n
					case h264.NALUTypePPS:
						pps = n
					}
				}
				if tr.SPS == nil && sps != nil {
					tr.SPS, tr.PPS = sps, pps
				}
				key := h264.IsRandomAccess(au)
				if key && sps == nil && tr.SPS != nil {
					au = append([][]byte{tr.SPS, tr.PPS}, au...)
				}
				raws = append(raws, raw{track: ti, dts: dts, pts: pts, key: key, payload: au})
				return nil
			})
		case *tscodecs.H265:
			tr := &unit.Track{Codec: unit.CodecH265}
			med.Tracks = append(med.Tracks, tr)
			r.OnDataH265(tt, func(pts, dts int64, au [][]byte) error {
				var ps [][]byte
				for _, n := range au {
					switch h265.NALUType((n[0] >> 1) & 0x3f) {
					case h265.NALUType_VPS_NUT:
						tr.VPS = n
						ps = append(ps, n)
					case h265.NALUType_SPS_NUT:
						tr.SPS = n
						ps = append(ps, n)
					case h265.NALUType_PPS_NUT:
						tr.PPS = n
						ps = append(ps, n)
					}
				}
				key := h265.IsRandomAccess(au)
				if key && len(ps) == 0 && tr.SPS != nil {
					au = append([][]byte{tr.VPS, tr.SPS, tr.PPS}, au...)
				}
				raws = append(raws, raw{track: ti, dts: dts, pts: pts, key: key, payload: au})
				return nil
			})
		case *tscodecs.MPEG4Audio:
			conf, err := c.Config.Marshal()
			if err != nil {
				return nil, err
			}
			tr := &unit.Track{Codec: unit.CodecAAC, AACConfig: conf, SampleRate: c.Config.SampleRate,
				ChannelCount: c.Config.ChannelCount} //nolint:staticcheck
			med.Tracks = append(med.Tracks, tr)
			r.OnDataMPEG4Audio(tt, func(pts int64, aus [][]byte) error {
				for i, au := range aus {
					ts := pts + int64(i)*1024*90000/int64(tr.SampleRate)
					raws = append(raws, raw{track: ti, dts: ts, pts: ts, key: true, payload: [][]byte{au}})
				}
				return nil
			})
		case *tscodecs.MPEG1Audio:
			tr := &unit.Track{Codec: unit.CodecMP3}
			med.Tracks = append(med.Tracks, tr)
			r.OnDataMPEG1Audio(tt, func(pts int64, frames [][]byte) error {
				off := int64(0)
				for _, fr := range frames {
					var h mpeg1audio.FrameHeader
					if err := h.Unmarshal(fr); err != nil {
						return err
					}
					tr.SampleRate = h.SampleRate
					tr.ChannelCount = 2
					if h.ChannelMode == mpeg1audio.ChannelModeMono {
						tr.ChannelCount = 1
					}
					ts := pts + off
					raws = append(raws, raw{track: ti, dts: ts, pts: ts, key: true, payload: [][]byte{fr}})
					off += int64(h.SampleCount()) * 90000 / int64(h.SampleRate)
				}
				return nil
			})
		case *tscodecs.Opus:
			tr := &unit.Track{Codec: unit.CodecOpus, SampleRate: 48000, ChannelCount: 1}
			med.Tracks = append(med.Tracks, tr)
			r.OnDataOpus(tt, func(pts int64, packets [][]byte) error {
				off := int64(0)
				for _, p := range packets {
					ts := pts + off
					raws = append(raws, raw{track: ti, dts: ts, pts: ts, key: true, payload: [][]byte{p}})
					off += opus.PacketDuration2(p) * 90000 / 48000
				}
				return nil
			})
		default:
			return nil, fmt.Errorf("unexpected codec %T", c)
		}
	}
	for {
		if err := r.Read(); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("read ts: %w", err)
		}
	}
	if len(raws) == 0 {
		return nil, errors.New("no media")
	}
	sort.SliceStable(raws, func(i, j int) bool { return raws[i].dts < raws[j].dts })
	base := raws[0].dts
	for _, rw := range raws {
		u := &unit.Unit{
			Track:   rw.track,
			DTS:     time.Duration(rw.dts-base) * time.Second / 90000,
			PTS:     time.Duration(rw.pts-base) * time.Second / 90000,
			Key:     rw.key,
			Payload: rw.payload,
		}
		med.Units = append(med.Units, u)
		if u.DTS > med.Length {
			med.Length = u.DTS
		}
	}
	med.Length += 40 * time.Millisecond // about one more frame
	return med, nil
}

// PublishOpts says how PublishMedia writes media.
type PublishOpts struct {
	Speed float64 // times real time; 0: as fast as the hub takes units
	Loops int     // times the media is written, with increasing timestamps (0: once)
	From  int     // first unit index of the first loop
	To    int     // units of the last loop (0: all)
}

// PublishMedia writes copies of med's units into p, paced by o.Speed relative to real time.
// It stops early when ctx is done or the hub refuses a unit.
func PublishMedia(ctx context.Context, p *hub.Publisher, med *Media, o PublishOpts) error {
	start := time.Now()
	first := time.Duration(-1)
	loops := max(o.Loops, 1)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for l := 0; l < loops; l++ {
		off := time.Duration(l) * med.Length
		units := med.Units
		if l == loops-1 && o.To > 0 {
			units = units[:o.To]
		}
		if l == 0 {
			units = units[min(o.From, len(units)):]
		}
		for _, tu := range units {
			u := &unit.Unit{Track: tu.Track, DTS: tu.DTS + off, PTS: tu.PTS + off, Key: tu.Key, Payload: tu.Payload}
			if first < 0 {
				first = u.DTS
			}
			if o.Speed > 0 {
				wait := time.Until(start.Add(time.Duration(float64(u.DTS-first) / o.Speed)))
				if wait > 0 {
					if timer == nil {
						timer = time.NewTimer(wait)
					} else {
						timer.Reset(wait)
					}
					select {
					case <-timer.C:
					case <-ctx.Done():
						return ctx.Err()
					}
				}
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := p.WriteUnit(u); err != nil {
				return err
			}
		}
	}
	return nil
}

// KeyIndexes returns the indexes in m.Units of the key units of the lead track (the
// video track, else the first).
func (m *Media) KeyIndexes() []int {
	lead := 0
	for i, t := range m.Tracks {
		if t.IsVideo() {
			lead = i
			break
		}
	}
	var out []int
	for i, u := range m.Units {
		if u.Track == lead && u.Key {
			out = append(out, i)
		}
	}
	return out
}
