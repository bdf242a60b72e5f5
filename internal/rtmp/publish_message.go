package rtmp

import (
	"fmt"
	"time"

	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/unit"
)

// handle processes one message from the publisher.
func (p *publishSession) handle(msg message.Message) error {
	switch m := msg.(type) {
	case *message.DataAMF0:
		if p.pub == nil {
			if meta, ok := parseMetadata(m.Payload); ok {
				p.meta = meta
			}
		}

	case *message.CommandAMF0:
		switch m.Name {
		case "deleteStream", "closeStream", "FCUnpublish":
			return errUnpublished
		case "onStatus":
			// A relay pull: the origin says its stream ended (see player.writeEnd).
			if p.source == hub.SourceRelay && playEnded(m) {
				return errUnpublished
			}
		}

	case *message.Video:
		return p.handleVideo(m)
	case *message.VideoExSequenceStart:
		return p.handleVideoSequenceStart(m)
	case *message.VideoExCodedFrames:
		return p.videoFrame(m.FourCC, m.Payload, p.ts.unwrap(m.DTS), m.PTSDelta)
	case *message.VideoExFramesX:
		return p.videoFrame(m.FourCC, m.Payload, p.ts.unwrap(m.DTS), 0)
	case *message.VideoExMultitrack:
		if m.TrackID == 0 {
			return p.handle(m.Wrapped)
		}

	case *message.Audio:
		return p.handleAudio(m)
	case *message.AudioExSequenceStart:
		return p.handleAudioSequenceStart(m)
	case *message.AudioExCodedFrames:
		return p.audioFrame(m.FourCC, m.Payload, p.ts.unwrap(m.DTS))
	case *message.AudioExMultitrack:
		if m.TrackID == 0 {
			return p.handle(m.Wrapped)
		}
	}
	return nil
}

func (p *publishSession) handleVideo(m *message.Video) error {
	switch m.Type {
	case message.VideoTypeConfig:
		switch m.Codec {
		case message.CodecH264:
			if m.AVCConfig == nil {
				return nil
			}
			return p.setTrack(kindVideo, h264Track(m.AVCConfig))
		case message.CodecH265:
			it, err := h265Track(m.HEVCConfig)
			if err != nil {
				return err
			}
			return p.setTrack(kindVideo, it)
		}
	case message.VideoTypeAU:
		want := unit.CodecH264
		if m.Codec == message.CodecH265 {
			want = unit.CodecH265
		}
		return p.videoUnit(want, m.AU, p.ts.unwrap(m.DTS), m.PTSDelta)
	}
	return nil
}

func (p *publishSession) handleVideoSequenceStart(m *message.VideoExSequenceStart) error {
	var it *ingestTrack
	var err error
	switch m.FourCC {
	case message.FourCCAVC:
		it = h264Track(m.AVCConfig)
	case message.FourCCHEVC:
		it, err = h265Track(m.HEVCConfig)
	case message.FourCCAV1:
		it, err = av1Track(m.AV1Config)
	default:
		return fmt.Errorf("unsupported video codec %q", fourCCString(m.FourCC))
	}
	if err != nil {
		return err
	}
	return p.setTrack(kindVideo, it)
}

func (p *publishSession) videoFrame(f message.FourCC, payload []byte, dts, cts time.Duration) error {
	var want unit.Codec
	switch f {
	case message.FourCCAVC:
		want = unit.CodecH264
	case message.FourCCHEVC:
		want = unit.CodecH265
	case message.FourCCAV1:
		want = unit.CodecAV1
	default:
		return fmt.Errorf("unsupported video codec %q", fourCCString(f))
	}
	return p.videoUnit(want, payload, dts, cts)
}

func (p *publishSession) videoUnit(want unit.Codec, payload []byte, dts, cts time.Duration) error {
	it := p.tracks[kindVideo]
	if it == nil || it.track == nil {
		return fmt.Errorf("%w: %v video frame", errMissingSeqHeader, want)
	}
	if it.track.Codec != want {
		return fmt.Errorf("%v video frame on a %v track", want, it.track.Codec)
	}
	if cts < 0 {
		return fmt.Errorf("negative composition time %v", cts)
	}
	// An AV1 sequence header may arrive in band only: write adds the track then.
	u, err := it.videoUnit(payload, dts, cts)
	if err != nil || u == nil {
		return err
	}
	return p.write(kindVideo, u)
}

func (p *publishSession) handleAudio(m *message.Audio) error {
	switch m.Codec {
	case message.CodecMPEG4Audio:
		if m.AACType == message.AudioAACTypeConfig {
			if m.AACConfig == nil {
				return nil
			}
			it, err := aacTrack(m.AACConfig)
			if err != nil {
				return err
			}
			return p.setTrack(kindAudio, it)
		}
		return p.aacFrame(m.AU, p.ts.unwrap(m.DTS))
	case message.CodecMPEG1Audio:
		return p.mp3Frames(m.AU, p.ts.unwrap(m.DTS))
	}
	return fmt.Errorf("unsupported audio codec %d", m.Codec)
}

func (p *publishSession) handleAudioSequenceStart(m *message.AudioExSequenceStart) error {
	switch m.FourCC {
	case message.FourCCOpus:
		return p.setTrack(kindAudio, opusTrack(m.OpusConfig))
	case message.FourCCMP4A:
		it, err := aacTrack(m.AACConfig)
		if err != nil {
			return err
		}
		return p.setTrack(kindAudio, it)
	case message.FourCCMP3:
		return nil // MP3 frames carry their parameters
	}
	return fmt.Errorf("unsupported audio codec %q", fourCCString(m.FourCC))
}

func (p *publishSession) audioFrame(f message.FourCC, payload []byte, dts time.Duration) error {
	switch f {
	case message.FourCCOpus:
		return p.simpleAudio(unit.CodecOpus, payload, dts)
	case message.FourCCMP4A:
		return p.aacFrame(payload, dts)
	case message.FourCCMP3:
		return p.mp3Frames(payload, dts)
	}
	return fmt.Errorf("unsupported audio codec %q", fourCCString(f))
}

func (p *publishSession) aacFrame(payload []byte, dts time.Duration) error {
	return p.simpleAudio(unit.CodecAAC, payload, dts)
}

func (p *publishSession) simpleAudio(want unit.Codec, payload []byte, dts time.Duration) error {
	it := p.tracks[kindAudio]
	if it == nil || it.track == nil {
		return fmt.Errorf("%w: %v audio frame", errMissingSeqHeader, want)
	}
	if it.track.Codec != want {
		return fmt.Errorf("%v audio frame on a %v track", want, it.track.Codec)
	}
	u, err := audioUnit(payload, dts)
	if err != nil {
		return err
	}
	return p.write(kindAudio, u)
}

// mp3Frames handles MP3 audio: its track comes from the frame headers.
func (p *publishSession) mp3Frames(payload []byte, dts time.Duration) error {
	frames, h, err := splitMP3(payload)
	if err != nil {
		return err
	}
	if it := p.tracks[kindAudio]; it == nil || it.track == nil || it.track.Codec != unit.CodecMP3 ||
		it.track.SampleRate != h.SampleRate || it.track.ChannelCount != h.ChannelCount {
		if err := p.setTrack(kindAudio, mp3Track(h)); err != nil {
			return err
		}
	}
	frameDur := time.Duration(h.Samples) * time.Second / time.Duration(h.SampleRate)
	for i, f := range frames {
		u, err := audioUnit(f, dts+time.Duration(i)*frameDur)
		if err != nil {
			return err
		}
		if err := p.write(kindAudio, u); err != nil {
			return err
		}
	}
	return nil
}

func fourCCString(f message.FourCC) string {
	b := []byte{byte(f >> 24), byte(f >> 16), byte(f >> 8), byte(f)}
	for i, c := range b {
		if c < 0x20 || c > 0x7E {
			b[i] = '?'
		}
	}
	return string(b)
}
