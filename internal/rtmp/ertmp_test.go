package rtmp

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/abema/go-mp4"
	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/unit"
)

// tsSample is one access unit or packet demuxed from an MPEG-TS file.
type tsSample struct {
	video bool
	pts   time.Duration
	dts   time.Duration
	data  [][]byte
}

// demuxHEVCOpus reads the H.265 and Opus samples of an MPEG-TS file made by ffmpeg.
func demuxHEVCOpus(t *testing.T, path string) (vps, sps, pps []byte, channels int, samples []tsSample) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r := &mpegts.Reader{R: f}
	require.NoError(t, r.Initialize())
	ts := func(v int64) time.Duration { return time.Duration(v) * time.Second / 90000 }
	for _, tr := range r.Tracks() {
		switch c := tr.Codec.(type) {
		case *tscodecs.H265:
			r.OnDataH265(tr, func(pts, dts int64, au [][]byte) error {
				for _, n := range au {
					switch h265.NALUType((n[0] >> 1) & 0x3F) {
					case h265.NALUType_VPS_NUT:
						vps = n
					case h265.NALUType_SPS_NUT:
						sps = n
					case h265.NALUType_PPS_NUT:
						pps = n
					}
				}
				samples = append(samples, tsSample{video: true, pts: ts(pts), dts: ts(dts), data: au})
				return nil
			})
		case *tscodecs.Opus:
			channels = c.ChannelCount
			r.OnDataOpus(tr, func(pts int64, packets [][]byte) error {
				for i, p := range packets {
					samples = append(samples, tsSample{pts: ts(pts) + time.Duration(i)*20*time.Millisecond, data: [][]byte{p}})
				}
				return nil
			})
		}
	}
	for {
		err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
	}
	require.NotNil(t, vps)
	return vps, sps, pps, channels, samples
}

// TestServerPublishHEVC publishes H.265 + Opus with gortmplib's client (Enhanced RTMP;
// ffmpeg 5.1 cannot), then checks the hub's units and plays the stream back.
func TestServerPublishHEVC(t *testing.T) {
	e := newTestEnv(t)
	vps, sps, pps, channels, samples := demuxHEVCOpus(t, media(t, "hevc_opus.ts"))
	require.Equal(t, 1, channels)

	c, err := publishClient(e, keyOf("alice"))
	require.NoError(t, err)
	videoTrack := &gortmplib.Track{Codec: &codecs.H265{VPS: vps, SPS: sps, PPS: pps}}
	audioTrack := &gortmplib.Track{Codec: &codecs.Opus{IDHeader: &opus.IDHeader{
		Version: 1, ChannelCount: uint8(channels), InputSampleRate: 48000,
	}}}
	w := &gortmplib.Writer{Conn: c, Tracks: []*gortmplib.Track{videoTrack, audioTrack}}
	require.NoError(t, w.Initialize())

	// Publish in real time, as an encoder would, until the test ends.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			start := time.Now()
			offset := time.Duration(0)
			for {
				var last time.Duration
				for _, s := range samples {
					if d := time.Until(start.Add(s.dts + offset)); d > 0 {
						select {
						case <-time.After(d):
						case <-ctx.Done():
							return nil
						}
					}
					var err error
					if s.video {
						err = w.WriteH265(videoTrack, s.pts+offset, s.dts+offset, s.data)
					} else {
						err = w.WriteOpus(audioTrack, s.pts+offset, s.data[0])
					}
					if err != nil {
						return err
					}
					last = max(last, s.pts)
				}
				offset += last + 40*time.Millisecond
			}
		}()
	}()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	st := e.waitLive("alice")
	tracks := st.Tracks()
	require.Len(t, tracks, 2)
	require.Equal(t, unit.CodecH265, tracks[0].Codec)
	require.Equal(t, vps, tracks[0].VPS)
	require.Equal(t, sps, tracks[0].SPS)
	require.Equal(t, pps, tracks[0].PPS)
	require.Equal(t, 320, tracks[0].Width)
	require.Equal(t, 240, tracks[0].Height)
	require.Equal(t, unit.CodecOpus, tracks[1].Codec)
	require.Equal(t, 48000, tracks[1].SampleRate)
	require.Equal(t, channels, tracks[1].ChannelCount)

	r, err := st.AddReader("test")
	require.NoError(t, err)
	_, units := readEvents(t, r, 40, 5*time.Second)
	r.Close()
	var key *unit.Unit
	opusUnits := 0
	for _, u := range units {
		if u.Track == 0 && key == nil {
			key = u
		}
		if u.Track == 1 {
			opusUnits++
		}
	}
	require.NotNil(t, key)
	require.True(t, key.Key)
	require.GreaterOrEqual(t, len(key.Payload), 4)
	for i, want := range []h265.NALUType{h265.NALUType_VPS_NUT, h265.NALUType_SPS_NUT, h265.NALUType_PPS_NUT} {
		require.Equal(t, want, h265.NALUType((key.Payload[i][0]>>1)&0x3F))
	}
	require.True(t, h265.IsRandomAccess(key.Payload))
	require.NotZero(t, opusUnits)

	// Play it back: Enhanced RTMP sequence starts and coded frames.
	pc := e.dialPlayer("alice")
	pc.NetConn().SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	pr := &gortmplib.Reader{Conn: pc}
	require.NoError(t, pr.Initialize())
	var hevc *codecs.H265
	var opusCodec *codecs.Opus
	var aus [][][]byte
	var packets int
	for _, tr := range pr.Tracks() {
		switch c := tr.Codec.(type) {
		case *codecs.H265:
			hevc = c
			pr.OnDataH265(tr, func(_, _ time.Duration, au [][]byte) { aus = append(aus, au) })
		case *codecs.Opus:
			opusCodec = c
			pr.OnDataOpus(tr, func(time.Duration, []byte) { packets++ })
		}
	}
	require.NotNil(t, hevc)
	require.Equal(t, sps, hevc.SPS)
	require.NotNil(t, opusCodec)
	require.Equal(t, uint8(channels), opusCodec.IDHeader.ChannelCount)
	for len(aus) < 5 {
		pc.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		require.NoError(t, pr.Read())
	}
	require.True(t, h265.IsRandomAccess(aus[0]))
	require.NotZero(t, packets)
	e.requireNoKeyInLogs()
}

// readAV1TemporalUnits splits a low overhead AV1 bitstream (ffmpeg's obu muxer) into
// temporal units, each starting with its temporal delimiter.
func readAV1TemporalUnits(t *testing.T, path string) (seqHeader []byte, tus [][]byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	for len(b) > 0 {
		var h av1.OBUHeader
		require.NoError(t, h.Unmarshal(b))
		require.True(t, h.HasSize)
		var size av1.LEB128
		n, err := size.Unmarshal(b[1:])
		require.NoError(t, err)
		obu := b[:1+n+int(size)]
		b = b[len(obu):]
		switch h.Type {
		case av1.OBUTypeTemporalDelimiter:
			tus = append(tus, nil)
		case av1.OBUTypeSequenceHeader:
			if seqHeader == nil {
				seqHeader = obu
			}
		}
		tus[len(tus)-1] = append(tus[len(tus)-1], obu...)
	}
	return seqHeader, tus
}

// TestServerPublishAV1 publishes AV1 (Enhanced RTMP) made by ffmpeg and plays it back.
func TestServerPublishAV1(t *testing.T) {
	e := newTestEnv(t)
	seq, tus := readAV1TemporalUnits(t, media(t, "av1.obu"))
	require.NotNil(t, seq)
	var sh av1.SequenceHeader
	require.NoError(t, sh.Unmarshal(seq))

	c := mustPublish(t, e, keyOf("bob"))
	require.NoError(t, c.Write(&message.DataAMF0{ChunkStreamID: 4, MessageStreamID: 0x1000000, Payload: amf0.Data{
		"@setDataFrame", "onMetaData", amf0.Object{{Key: "videocodecid", Value: float64(message.FourCCAV1)}},
	}}))
	require.NoError(t, c.Write(&message.VideoExSequenceStart{
		ChunkStreamID: 6, MessageStreamID: 0x1000000, FourCC: message.FourCCAV1,
		AV1Config: &mp4.Av1C{
			Marker: 1, Version: 1, SeqProfile: sh.SeqProfile, SeqLevelIdx0: sh.SeqLevelIdx[0],
			ChromaSubsamplingX: 1, ChromaSubsamplingY: 1, ConfigOBUs: seq,
		},
	}))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			start := time.Now()
			for i := 0; ; i++ {
				dts := time.Duration(i) * time.Second / 30
				if d := time.Until(start.Add(dts)); d > 0 {
					select {
					case <-time.After(d):
					case <-ctx.Done():
						return nil
					}
				}
				err := c.Write(&message.VideoExCodedFrames{
					ChunkStreamID: 6, MessageStreamID: 0x1000000, FourCC: message.FourCCAV1,
					DTS: dts, Payload: tus[i%len(tus)],
				})
				if err != nil {
					return err
				}
			}
		}()
	}()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	st := e.waitLive("bob")
	tracks := st.Tracks()
	require.Len(t, tracks, 1)
	require.Equal(t, unit.CodecAV1, tracks[0].Codec)
	require.Equal(t, 320, tracks[0].Width)
	require.Equal(t, 240, tracks[0].Height)

	r, err := st.AddReader("test")
	require.NoError(t, err)
	_, units := readEvents(t, r, 5, 5*time.Second)
	r.Close()
	require.NotEmpty(t, units)
	require.True(t, units[0].Key)
	require.True(t, av1.IsRandomAccess2(units[0].Payload))
	for _, obu := range units[0].Payload {
		require.NotEqual(t, av1.OBUTypeTemporalDelimiter, av1.OBUType((obu[0]>>3)&0x0F))
	}

	pc := e.dialPlayer("bob")
	pc.NetConn().SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	pr := &gortmplib.Reader{Conn: pc}
	require.NoError(t, pr.Initialize())
	require.Len(t, pr.Tracks(), 1)
	_, ok := pr.Tracks()[0].Codec.(*codecs.AV1)
	require.True(t, ok)
	var got [][][]byte
	pr.OnDataAV1(pr.Tracks()[0], func(_ time.Duration, tu [][]byte) { got = append(got, tu) })
	for len(got) < 3 {
		pc.NetConn().SetReadDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		require.NoError(t, pr.Read())
	}
	require.True(t, av1.IsRandomAccess2(got[0]))
}
