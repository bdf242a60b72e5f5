package transcode

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
	tscodecs "github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts/substructs"

	"github.com/onair/onair/internal/unit"
)

// tsOffset keeps MPEG-TS timestamps away from 0, so that ffmpeg never sees a negative
// one (B-frames of the first GOP) and the 33-bit wrap stays far.
const tsOffset = 10 * 90000

// ts90 converts a hub timestamp to the 90 kHz MPEG-TS clock.
func ts90(d time.Duration) int64 {
	return tsOffset + int64(d/time.Second)*90000 + int64(d%time.Second)*90000/int64(time.Second)
}

// fromTS90 converts an unwrapped 90 kHz timestamp back to the hub timeline.
func fromTS90(v int64) time.Duration {
	v -= tsOffset
	return time.Duration(v/90000)*time.Second + time.Duration(v%90000)*time.Second/90000
}

// tsInput writes hub units of the planned source tracks as MPEG-TS.
type tsInput struct {
	w      *mpegts.Writer
	bw     *bufio.Writer
	tracks map[int]*mpegts.Track // hub track index → TS track
}

func newTSInput(w io.Writer, tracks []*unit.Track, p plan) (*tsInput, error) {
	in := &tsInput{bw: bufio.NewWriterSize(w, 64<<10), tracks: make(map[int]*mpegts.Track)}
	var list []*mpegts.Track
	for _, i := range []int{p.video, p.audio} {
		if i < 0 {
			continue
		}
		c, err := tsCodec(tracks[i])
		if err != nil {
			return nil, err
		}
		t := &mpegts.Track{Codec: c}
		in.tracks[i] = t
		list = append(list, t)
	}
	in.w = &mpegts.Writer{W: in.bw, Tracks: list}
	if err := in.w.Initialize(); err != nil {
		return nil, fmt.Errorf("mpeg-ts writer: %w", err)
	}
	return in, nil
}

// tsCodec describes a source track for ffmpeg.
func tsCodec(t *unit.Track) (tscodecs.Codec, error) {
	switch t.Codec {
	case unit.CodecH264:
		return &tscodecs.H264{}, nil
	case unit.CodecH265:
		return &tscodecs.H265{}, nil
	case unit.CodecMP3:
		return &tscodecs.MPEG1Audio{}, nil
	case unit.CodecOpus:
		ch := min(max(t.ChannelCount, 1), 2)
		return &tscodecs.Opus{Desc: &substructs.OpusAudioDescriptor{ChannelConfigCode: uint8(ch)}}, nil
	case unit.CodecAAC:
		var conf mpeg4audio.AudioSpecificConfig
		if err := conf.Unmarshal(t.AACConfig); err != nil {
			return nil, fmt.Errorf("aac config: %w", err)
		}
		return &tscodecs.MPEG4Audio{Config: conf}, nil
	}
	return nil, fmt.Errorf("codec %s cannot be transcoded", t.Codec)
}

// write writes one unit; units of other tracks are skipped.
func (in *tsInput) write(u *unit.Unit) error {
	t := in.tracks[u.Track]
	if t == nil {
		return nil
	}
	var err error
	switch t.Codec.(type) {
	case *tscodecs.H264:
		err = in.w.WriteH264(t, ts90(u.PTS), ts90(u.DTS), nonEmpty(u.Payload))
	case *tscodecs.H265:
		err = in.w.WriteH265(t, ts90(u.PTS), ts90(u.DTS), nonEmpty(u.Payload))
	case *tscodecs.MPEG4Audio:
		err = in.w.WriteMPEG4Audio(t, ts90(u.PTS), u.Payload[:1])
	case *tscodecs.MPEG1Audio:
		err = in.w.WriteMPEG1Audio(t, ts90(u.PTS), u.Payload[:1])
	case *tscodecs.Opus:
		err = in.w.WriteOpus(t, ts90(u.PTS), u.Payload[:1])
	}
	return err
}

// flush sends what is buffered to ffmpeg.
func (in *tsInput) flush() error { return in.bw.Flush() }

// nonEmpty returns the NAL units of au without empty ones (the writer indexes their first byte).
func nonEmpty(au [][]byte) [][]byte {
	out := au[:0:0]
	for _, n := range au {
		if len(n) > 0 {
			out = append(out, n)
		}
	}
	return out
}

// tsOutput reads one rendition back from ffmpeg: H.264 and AAC.
type tsOutput struct {
	r      *mpegts.Reader
	tracks []*unit.Track // video first when present
	video  *unit.Track
	audio  *unit.Track
	onUnit func(u *unit.Unit, tracks []*unit.Track) error
	vi, ai int

	// 33-bit timestamps unwrapped: base + dec.Decode(ts)
	dec     mpegts.TimeDecoder
	base    int64
	hasBase bool
}

// unwrap extends a 33-bit MPEG-TS timestamp past its wrap (every 26.5 hours).
func (o *tsOutput) unwrap(ts int64) time.Duration {
	if !o.hasBase {
		o.base, o.hasBase = ts, true
	}
	return fromTS90(o.base + o.dec.Decode(ts))
}

var errNoTracks = errors.New("rendition has no h264 or aac track")

// readTS reads MPEG-TS from rd until EOF, calling onUnit for every unit once the tracks
// are known (the video track's parameter sets come with its first key frame: units
// before it are dropped).
func readTS(rd io.Reader, onUnit func(u *unit.Unit, tracks []*unit.Track) error) error {
	o := &tsOutput{r: &mpegts.Reader{R: rd}, onUnit: onUnit, vi: -1, ai: -1}
	if err := o.r.Initialize(); err != nil {
		return fmt.Errorf("read rendition: %w", err)
	}
	o.r.OnDecodeError(func(error) {})
	for _, tt := range o.r.Tracks() {
		switch c := tt.Codec.(type) {
		case *tscodecs.H264:
			if o.video != nil {
				continue
			}
			o.video = &unit.Track{Codec: unit.CodecH264}
			o.r.OnDataH264(tt, o.onH264)
		case *tscodecs.MPEG4Audio:
			if o.audio != nil {
				continue
			}
			conf, err := c.Config.Marshal()
			if err != nil {
				return fmt.Errorf("rendition aac config: %w", err)
			}
			o.audio = &unit.Track{Codec: unit.CodecAAC, AACConfig: conf, SampleRate: c.Config.SampleRate,
				ChannelCount: c.Config.ChannelCount} //nolint:staticcheck // the only field mediacommon fills
			o.r.OnDataMPEG4Audio(tt, o.onAAC)
		}
	}
	switch {
	case o.video != nil && o.audio != nil:
		o.vi, o.ai = 0, 1
	case o.video != nil:
		o.vi = 0
	case o.audio != nil:
		o.ai = 0
		o.tracks = []*unit.Track{o.audio}
	default:
		return errNoTracks
	}
	for {
		if err := o.r.Read(); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil
			}
			return fmt.Errorf("read rendition: %w", err)
		}
	}
}

func (o *tsOutput) onH264(pts, dts int64, au [][]byte) error {
	key := h264.IsRandomAccess(au)
	if o.tracks == nil {
		if !key {
			return nil
		}
		for _, n := range au {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				o.video.SPS = n
			case h264.NALUTypePPS:
				o.video.PPS = n
			}
		}
		if o.video.SPS == nil || o.video.PPS == nil {
			return nil
		}
		var sps h264.SPS
		if err := sps.Unmarshal(o.video.SPS); err == nil {
			o.video.Width, o.video.Height = sps.Width(), sps.Height()
		}
		o.tracks = []*unit.Track{o.video}
		if o.audio != nil {
			o.tracks = append(o.tracks, o.audio)
		}
	}
	if key && !hasSPS(au) {
		au = append([][]byte{o.video.SPS, o.video.PPS}, au...)
	}
	d := o.unwrap(dts)
	return o.onUnit(&unit.Unit{Track: o.vi, DTS: d, PTS: d + fromTS90(tsOffset+(pts-dts)&0x1FFFFFFFF), Key: key, Payload: au}, o.tracks)
}

func (o *tsOutput) onAAC(pts int64, aus [][]byte) error {
	if o.tracks == nil || o.audio.SampleRate <= 0 {
		return nil
	}
	for i, au := range aus {
		ts := o.unwrap(pts) + time.Duration(i)*mpeg4audio.SamplesPerAccessUnit*time.Second/time.Duration(o.audio.SampleRate)
		if err := o.onUnit(&unit.Unit{Track: o.ai, DTS: ts, PTS: ts, Key: true, Payload: [][]byte{au}}, o.tracks); err != nil {
			return err
		}
	}
	return nil
}

func hasSPS(au [][]byte) bool {
	for _, n := range au {
		if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS {
			return true
		}
	}
	return false
}
