package rtmp

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/abema/go-mp4"
	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/unit"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the fuzz seed corpus in testdata/fuzz")

// A real H.264 SPS/PPS (1920x1080 baseline, as gortmplib's writer defaults) for seeds.
var (
	seedSPS = []byte{
		0x67, 0x42, 0xc0, 0x28, 0xd9, 0x00, 0x78, 0x02,
		0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04,
		0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc9, 0x20,
	}
	seedPPS = []byte{0x08, 0x06, 0x07, 0x08}
)

// clientMessages chunks messages the way a client sends them (after the handshake).
func clientMessages(msgs ...message.Message) []byte {
	var buf bytes.Buffer
	bc := bytecounter.NewWriter(&buf)
	w := message.NewWriter(bc, bc, false)
	for _, m := range msgs {
		if err := w.Write(m); err != nil {
			panic(err)
		}
	}
	return buf.Bytes()
}

func connectMsgs(action, name string) []message.Message {
	msgs := []message.Message{
		&message.SetChunkSize{Value: 4096},
		&message.CommandAMF0{ChunkStreamID: 3, Name: "connect", CommandID: 1, Arguments: []any{amf0.Object{
			{Key: "app", Value: "live"},
			{Key: "tcUrl", Value: "rtmp://127.0.0.1:1935/live"},
			{Key: "flashVer", Value: "FMLE/3.0"},
		}}},
		&message.CommandAMF0{ChunkStreamID: 3, Name: "releaseStream", CommandID: 2, Arguments: []any{nil, name}},
		&message.CommandAMF0{ChunkStreamID: 3, Name: "FCPublish", CommandID: 3, Arguments: []any{nil, name}},
		&message.CommandAMF0{ChunkStreamID: 3, Name: "createStream", CommandID: 4, Arguments: []any{nil}},
		&message.CommandAMF0{ChunkStreamID: 8, MessageStreamID: 0x1000000, Name: action, CommandID: 5, Arguments: []any{nil, name, "live"}},
	}
	return msgs
}

// fuzzSeeds returns client byte streams (after the handshake) covering the publish and
// play paths.
func fuzzSeeds() map[string][]byte {
	avcc := append([]byte{0, 0, 0, 4}, seedPPS...)
	au := []byte{0, 0, 0, 5, 0x65, 0x88, 0x84, 0x00, 0x33}
	publish := append(connectMsgs("publish", keyOf("alice")),
		&message.DataAMF0{ChunkStreamID: 4, MessageStreamID: 0x1000000, Payload: amf0.Data{
			"@setDataFrame", "onMetaData", amf0.ECMAArray{
				{Key: "videocodecid", Value: float64(7)}, {Key: "audiocodecid", Value: float64(10)},
			},
		}},
		&message.Video{ChunkStreamID: 6, MessageStreamID: 0x1000000, Codec: message.CodecH264, IsKeyFrame: true,
			Type: message.VideoTypeConfig, AVCConfig: mustAVCConfig(seedSPS, seedPPS)},
		&message.Audio{ChunkStreamID: 4, MessageStreamID: 0x1000000, Codec: message.CodecMPEG4Audio, Rate: 3, Depth: 1,
			IsStereo: true, AACType: message.AudioAACTypeConfig, AACConfig: mustAAC()},
		&message.Video{ChunkStreamID: 6, MessageStreamID: 0x1000000, Codec: message.CodecH264, IsKeyFrame: true,
			Type: message.VideoTypeAU, AU: append(au, avcc...)},
		&message.Audio{ChunkStreamID: 4, MessageStreamID: 0x1000000, Codec: message.CodecMPEG4Audio, Rate: 3, Depth: 1,
			IsStereo: true, AACType: message.AudioAACTypeAU, AU: []byte{0x21, 0x10, 0x04}, DTS: 20 * time.Millisecond},
		&message.Video{ChunkStreamID: 6, MessageStreamID: 0x1000000, Codec: message.CodecH264,
			Type: message.VideoTypeAU, AU: []byte{0, 0, 0, 3, 0x41, 0x9a, 0x02}, DTS: 33 * time.Millisecond,
			PTSDelta: 66 * time.Millisecond},
		&message.CommandAMF0{ChunkStreamID: 3, Name: "FCUnpublish", CommandID: 6, Arguments: []any{nil, keyOf("alice")}},
	)
	mp3 := append(connectMsgs("publish", keyOf("bob")),
		&message.DataAMF0{ChunkStreamID: 4, MessageStreamID: 0x1000000, Payload: amf0.Data{
			"onMetaData", amf0.Object{{Key: "audiocodecid", Value: float64(2)}},
		}},
		&message.Audio{ChunkStreamID: 4, MessageStreamID: 0x1000000, Codec: message.CodecMPEG1Audio, Rate: 3, Depth: 1,
			AU: append([]byte{0xFF, 0xFB, 0x90, 0xC4}, make([]byte, 413)...)},
	)
	hevc := append(connectMsgs("publish", keyOf("carol")), eRTMPMessages()...)
	play := append(connectMsgs("play", "dave"),
		&message.UserControlSetBufferLength{StreamID: 1, BufferLength: 3000},
		&message.Acknowledge{Value: 1000},
		&message.CommandAMF0{ChunkStreamID: 3, Name: "deleteStream", CommandID: 7, Arguments: []any{nil, float64(1)}},
	)
	return map[string][]byte{
		"publish_h264_aac": clientMessages(publish...),
		"publish_mp3":      clientMessages(mp3...),
		"publish_hevc":     clientMessages(hevc...),
		"play":             clientMessages(play...),
		"wrong_key":        clientMessages(connectMsgs("publish", "nope")...),
		"chunk_size_zero":  clientMessages(&message.SetChunkSize{Value: 0}),
	}
}

// recordConn is a gortmplib.Conn that keeps the messages written to it.
type recordConn struct{ msgs []message.Message }

func (c *recordConn) BytesReceived() uint64           { return 0 }
func (c *recordConn) BytesSent() uint64               { return 0 }
func (c *recordConn) Read() (message.Message, error)  { return nil, io.EOF }
func (c *recordConn) Write(msg message.Message) error { c.msgs = append(c.msgs, msg); return nil }

// eRTMPMessages returns what gortmplib's writer sends for an H.265 + Opus stream
// (Enhanced RTMP), with gortmplib's default parameter sets.
func eRTMPMessages() []message.Message {
	rc := &recordConn{}
	video := &gortmplib.Track{Codec: &codecs.H265{}}
	audio := &gortmplib.Track{Codec: &codecs.Opus{IDHeader: &opus.IDHeader{Version: 1, ChannelCount: 2, InputSampleRate: 48000}}}
	w := &gortmplib.Writer{Conn: rc, Tracks: []*gortmplib.Track{video, audio}}
	if err := w.Initialize(); err != nil {
		panic(err)
	}
	// an IDR_W_RADL slice, then a trailing picture with a composition offset
	w.WriteH265(video, 0, 0, [][]byte{{0x26, 0x01, 0xaf, 0x09}})                                     //nolint:errcheck
	w.WriteOpus(audio, 0, []byte{0xfc, 0xff, 0xfe})                                                  //nolint:errcheck
	w.WriteH265(video, 80*time.Millisecond, 40*time.Millisecond, [][]byte{{0x02, 0x01, 0xd0, 0x09}}) //nolint:errcheck
	return rc.msgs
}

func mustAVCConfig(sps, pps []byte) *mp4.AVCDecoderConfiguration {
	return &mp4.AVCDecoderConfiguration{
		AnyTypeBox:                 mp4.AnyTypeBox{Type: mp4.BoxTypeAvcC()},
		ConfigurationVersion:       1,
		Profile:                    sps[1],
		ProfileCompatibility:       sps[2],
		Level:                      sps[3],
		Reserved:                   0b111111,
		LengthSizeMinusOne:         3,
		Reserved2:                  0b111,
		NumOfSequenceParameterSets: 1,
		SequenceParameterSets:      []mp4.AVCParameterSet{{Length: uint16(len(sps)), NALUnit: sps}},
		NumOfPictureParameterSets:  1,
		PictureParameterSets:       []mp4.AVCParameterSet{{Length: uint16(len(pps)), NALUnit: pps}},
	}
}

func mustAAC() *mpeg4audio.AudioSpecificConfig {
	return &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelConfig: 2}
}

// writeSeedCorpus writes the seeds in the go fuzz corpus format.
func writeSeedCorpus(t *testing.T, target string, seeds map[string][]byte) {
	dir := filepath.Join("testdata", "fuzz", target)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for name, b := range seeds {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "seed_"+name), []byte(content), 0o644))
	}
}

func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz")
	}
	writeSeedCorpus(t, "FuzzServerConn", fuzzSeeds())
	writeSeedCorpus(t, "FuzzServerLoopback", fuzzSeeds())
	chunks := map[string][]byte{}
	for name, b := range fuzzSeeds() {
		chunks[name] = b
	}
	writeSeedCorpus(t, "FuzzChunkGuard", chunks)
	writeSeedCorpus(t, "FuzzSplitNALUs", map[string][]byte{
		"two_nalus": {0, 0, 0, 2, 0x65, 0x88, 0, 0, 0, 1, 0x06},
		"truncated": {0, 0, 0, 9, 0x65},
	})
	writeSeedCorpus(t, "FuzzSplitMP3", map[string][]byte{
		"mpeg1_128k": append([]byte{0xFF, 0xFB, 0x90, 0xC4}, make([]byte, 413)...),
		"mpeg2_64k":  append([]byte{0xFF, 0xF3, 0x80, 0xC4}, make([]byte, 204)...),
	})
	writeSeedCorpus(t, "FuzzCodecConfig", map[string][]byte{
		"h264_sps": seedSPS,
	})
}

// fuzzServer builds a server for conn handlers without a listener, and a hub with a live
// H.264 stream "alice" for players.
func fuzzServer(tb testing.TB) (*Server, func()) {
	logger := slog.New(slog.DiscardHandler)
	reg := &hub.Registry{Logger: logger, GracePeriod: -1}
	require.NoError(tb, reg.Start())
	s := &Server{
		Hub: reg, Authorize: fakeAuthorize, Logger: logger,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
		MaxMessageSize: 1 << 20,
	}
	require.NoError(tb, s.init())
	pub, err := reg.Publish("dave", []*unit.Track{{Codec: unit.CodecH264, SPS: seedSPS, PPS: seedPPS}})
	require.NoError(tb, err)
	err = pub.WriteUnit(&unit.Unit{Key: true, Payload: [][]byte{seedSPS, seedPPS, {0x65, 0x88, 0x84}}})
	require.NoError(tb, err)
	return s, func() {
		s.cancel()
		s.wg.Wait()
		pub.Close()
		reg.Close()
	}
}

// memConn is a net.Conn whose peer sent a fixed byte stream and then closed; what the
// server writes is discarded. It keeps the handler deterministic for the fuzzer (no
// timing, no socket).
type memConn struct {
	r      *bytes.Reader
	mu     sync.Mutex
	closed bool
}

func (c *memConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return c.r.Read(p)
}

func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	return len(p), nil
}

func (c *memConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

func (*memConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1935} }
func (*memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000} }
func (*memConn) SetDeadline(time.Time) error      { return nil }
func (*memConn) SetReadDeadline(time.Time) error  { return nil }
func (*memConn) SetWriteDeadline(time.Time) error { return nil }

// runConn runs the server's connection handler on a connection whose client sends a
// plain handshake and then b.
func runConn(t *testing.T, s *Server, b []byte) {
	in := make([]byte, handshakeIn, handshakeIn+len(b))
	in[0] = rtmpVersion
	c := s.newConn(&memConn{r: bytes.NewReader(append(in, b...))})
	done := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer close(done)
		s.serveConn(c)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("connection handler did not return")
	}
}

func FuzzServerConn(f *testing.F) {
	for _, b := range fuzzSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, stop := fuzzServer(t)
		defer stop()
		runConn(t, s, b)
	})
}

// readRaw reads raw messages the way gortmplib's message reader does (applying
// SetChunkSize and Abort), until an error.
func readRaw(r io.Reader) ([]*rawmessage.Message, error) {
	bc := bytecounter.NewReader(r)
	rr := rawmessage.NewReader(bc, bc, func(uint32) error { return nil })
	var out []*rawmessage.Message
	for {
		m, err := rr.Read()
		if err != nil {
			return out, err
		}
		switch m.Type {
		case msgTypeSetChunkSize:
			if len(m.Body) != 4 {
				return out, errors.New("invalid body size")
			}
			if err := rr.SetChunkSize(be32(m.Body)); err != nil {
				return out, err
			}
		case msgTypeAbort:
			if len(m.Body) != 4 {
				return out, errors.New("invalid body size")
			}
			rr.AbortChunkStream(be32(m.Body))
		}
		out = append(out, m)
		if len(out) > 10000 {
			return out, errors.New("too many messages")
		}
	}
}

func isLimitError(err error) bool {
	for _, s := range []string{"out of range", "exceeds limit", "unfinished messages hold", "lacks the extended timestamp", "empty audio", "empty video"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

// FuzzChunkGuard checks that the guard follows gortmplib's chunk reader: reading through
// the guard gives the same messages as reading alone, until the guard refuses a limit.
func FuzzChunkGuard(f *testing.F) {
	for _, b := range fuzzSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		alone, aloneErr := readRaw(bytes.NewReader(b))
		g := newChunkGuard(iotest.OneByteReader(bytes.NewReader(b)), 1<<16)
		g.st, g.need = gsBasic, 1
		guarded, guardedErr := readRaw(g)
		require.LessOrEqual(t, len(guarded), len(alone))
		for i := range guarded {
			require.True(t, reflect.DeepEqual(alone[i], guarded[i]), "message %d differs", i)
		}
		// With read-ahead (publishers) the guard checks bytes before the reader asks for
		// them: it may stop earlier on bad input, never pass anything else.
		ra := newChunkGuard(iotest.HalfReader(bytes.NewReader(b)), 1<<16)
		ra.st, ra.need = gsBasic, 1
		ra.setReadAhead(61, 0)
		ahead, aheadErr := readRaw(ra)
		require.LessOrEqual(t, len(ahead), len(guarded))
		for i := range ahead {
			require.True(t, reflect.DeepEqual(guarded[i], ahead[i]), "read-ahead message %d differs", i)
		}
		if !errors.Is(aheadErr, errGuard) {
			require.Equal(t, len(guarded), len(ahead), "read-ahead %v, guard %v", aheadErr, guardedErr)
		}
		if errors.Is(guardedErr, errGuard) && isLimitError(guardedErr) {
			return
		}
		require.Equal(t, len(alone), len(guarded), "guard %v, alone %v", guardedErr, aloneErr)
	})
}

func FuzzSplitNALUs(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, 0x65, 0x88, 0, 0, 0, 1, 0x06})
	f.Fuzz(func(t *testing.T, b []byte) {
		for size := 1; size <= 4; size++ {
			nalus, err := splitNALUs(b, size)
			if err != nil {
				continue
			}
			n := 0
			for _, nalu := range nalus {
				require.NotEmpty(t, nalu)
				n += size + len(nalu)
			}
			require.LessOrEqual(t, n, len(b))
			// The key unit path must not panic on any NAL unit.
			for _, c := range []unit.Codec{unit.CodecH264, unit.CodecH265} {
				it := &ingestTrack{track: &unit.Track{Codec: c, VPS: []byte{0x40}, SPS: seedSPS, PPS: seedPPS}, nalLen: size}
				u, err := it.videoUnit(b, 0, 0)
				require.NoError(t, err)
				if u != nil {
					require.NotNil(t, encodeUnit(it.track, u))
				}
			}
		}
	})
}

func FuzzSplitMP3(f *testing.F) {
	f.Add(append([]byte{0xFF, 0xFB, 0x90, 0xC4}, make([]byte, 413)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		frames, h, err := splitMP3(b)
		if err != nil {
			return
		}
		require.Positive(t, h.SampleRate)
		require.Positive(t, h.FrameLen)
		n := 0
		for _, fr := range frames {
			n += len(fr)
		}
		require.Equal(t, len(b), n)
	})
}

// FuzzCodecConfig feeds untrusted parameter sets to the code that builds tracks and
// decoder configuration records from them.
func FuzzCodecConfig(f *testing.F) {
	f.Add(seedSPS)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		hevcConfig(b, b, b)
		av1Config(b)
		if len(b) >= 4 {
			avcConfig(b, b)
		}
		for _, c := range []unit.Codec{unit.CodecH264, unit.CodecH265, unit.CodecAV1, unit.CodecAAC, unit.CodecOpus, unit.CodecMP3} {
			tr := &unit.Track{Codec: c, VPS: b, SPS: b, PPS: b, AV1SequenceHeader: b, AACConfig: b, SampleRate: 44100}
			encodeHeaders([]*unit.Track{tr}, 0)
		}
		it := &ingestTrack{track: &unit.Track{Codec: unit.CodecAV1}}
		it.videoUnit(b, 0, 0) //nolint:errcheck
		if d, err := amf0.Unmarshal(b); err == nil {
			parseMetadata(d)
		}
	})
}
