package loadgen

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"time"

	"github.com/abema/go-mp4"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// clipMsg is one media message of the clip, ready to be re-sent with a new DTS.
type clipMsg struct {
	dts    time.Duration
	video  *message.Video
	audio  *message.Audio
	header bool // sequence header: sent once, not on every loop
}

// Clip is an FLV file (H.264 + AAC) loaded into RTMP messages, shared read-only by all
// publishers.
type Clip struct {
	msgs []clipMsg
	// Duration is the length of one loop: the last video DTS plus one frame interval.
	Duration time.Duration
	// FPS is the video frame rate.
	FPS float64
	// Bitrate is the average media bit rate in bit/s.
	Bitrate float64
}

// LoadClip reads an FLV file with H.264 video (and optionally AAC audio), as written by
// `ffmpeg ... -c:v libx264 -c:a aac -f flv`.
func LoadClip(path string) (*Clip, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read clip: %w", err)
	}
	return parseFLV(b)
}

func parseFLV(b []byte) (*Clip, error) {
	if len(b) < 13 || string(b[:3]) != "FLV" {
		return nil, fmt.Errorf("clip is not an FLV file")
	}
	off := int(binary.BigEndian.Uint32(b[5:9])) + 4
	c := &Clip{}
	var frames int
	var first, last time.Duration = -1, 0
	var payload int
	for off+11 <= len(b) {
		typ := b[off] & 0x1f
		size := int(b[off+1])<<16 | int(b[off+2])<<8 | int(b[off+3])
		ts := uint32(b[off+4])<<16 | uint32(b[off+5])<<8 | uint32(b[off+6]) | uint32(b[off+7])<<24
		if off+11+size > len(b) {
			break
		}
		data := b[off+11 : off+11+size]
		off += 11 + size + 4
		dts := time.Duration(ts) * time.Millisecond
		switch typ {
		case 9:
			v, err := parseVideoTag(data)
			if err != nil {
				return nil, fmt.Errorf("video tag at %v: %w", dts, err)
			}
			if v == nil {
				continue
			}
			v.DTS = dts
			hdr := v.Type == message.VideoTypeConfig
			if !hdr {
				frames++
				if first < 0 {
					first = dts
				}
				last = dts
			}
			payload += len(data)
			c.msgs = append(c.msgs, clipMsg{dts: dts, video: v, header: hdr})
		case 8:
			a, err := parseAudioTag(data)
			if err != nil {
				return nil, fmt.Errorf("audio tag at %v: %w", dts, err)
			}
			if a == nil {
				continue
			}
			a.DTS = dts
			payload += len(data)
			c.msgs = append(c.msgs, clipMsg{dts: dts, audio: a, header: a.AACType == message.AudioAACTypeConfig})
		}
	}
	if frames < 2 || last <= first {
		return nil, fmt.Errorf("clip has fewer than 2 H.264 frames")
	}
	c.FPS = float64(frames-1) / (last - first).Seconds()
	// One loop ends one frame interval after the last message of either track, so that
	// timestamps keep increasing per track across loops.
	end := last
	for _, m := range c.msgs {
		end = max(end, m.dts)
	}
	c.Duration = end + time.Duration(float64(time.Second)/c.FPS)
	c.Bitrate = float64(payload*8) / c.Duration.Seconds()
	return c, nil
}

// parseVideoTag decodes an FLV video tag body; nil for tags that are skipped (EOS).
func parseVideoTag(d []byte) (*message.Video, error) {
	if len(d) < 5 {
		return nil, fmt.Errorf("short video tag")
	}
	if d[0]&0x0f != message.CodecH264 {
		return nil, fmt.Errorf("video codec %d is not H.264", d[0]&0x0f)
	}
	v := &message.Video{
		ChunkStreamID: message.VideoChunkStreamID,
		Codec:         message.CodecH264,
		IsKeyFrame:    d[0]>>4 == 1,
		Type:          message.VideoType(d[1]),
		PTSDelta: time.Duration(int32(uint32(d[2])<<24|uint32(d[3])<<16|
			uint32(d[4])<<8)>>8) * time.Millisecond,
	}
	switch v.Type {
	case message.VideoTypeConfig:
		v.AVCConfig = &mp4.AVCDecoderConfiguration{}
		v.AVCConfig.SetType(mp4.BoxTypeAvcC())
		if _, err := mp4.Unmarshal(bytes.NewReader(d[5:]), uint64(len(d)-5), v.AVCConfig, mp4.Context{}); err != nil {
			return nil, fmt.Errorf("parse H.264 config: %w", err)
		}
	case message.VideoTypeAU:
		if len(d) < 6 {
			return nil, fmt.Errorf("empty H.264 frame")
		}
		v.AU = d[5:]
	default:
		return nil, nil
	}
	return v, nil
}

// parseAudioTag decodes an FLV AAC tag body; nil for other audio codecs (skipped).
func parseAudioTag(d []byte) (*message.Audio, error) {
	if len(d) < 2 || d[0]>>4 != message.CodecMPEG4Audio {
		return nil, nil
	}
	a := &message.Audio{
		ChunkStreamID: message.AudioChunkStreamID,
		Codec:         message.CodecMPEG4Audio,
		Rate:          message.AudioRate((d[0] >> 2) & 0x03),
		Depth:         message.AudioDepth((d[0] >> 1) & 0x01),
		IsStereo:      d[0]&0x01 != 0,
		AACType:       message.AudioAACType(d[1]),
	}
	switch a.AACType {
	case message.AudioAACTypeConfig:
		a.AACConfig = &mpeg4audio.AudioSpecificConfig{}
		if err := a.AACConfig.Unmarshal(d[2:]); err != nil {
			return nil, fmt.Errorf("parse AAC config: %w", err)
		}
	case message.AudioAACTypeAU:
		if len(d) < 3 {
			return nil, fmt.Errorf("empty AAC frame")
		}
		a.AU = d[2:]
	default:
		return nil, fmt.Errorf("AAC packet type %d", d[1])
	}
	return a, nil
}
