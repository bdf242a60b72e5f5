package transcode

import (
	"math"
	"strconv"

	"github.com/onair/onair/internal/cmaf"
	"github.com/onair/onair/internal/unit"
)

// Rung is one rendition of the ladder besides the source.
type Rung struct {
	// Name names the rendition in URLs and hub stream names: "720p", "audio".
	Name string
	// Height is the video height in lines; 0 makes an audio-only rendition.
	Height int
	// Kbps is the video bit rate (the audio one for audio only). 0: a default from the size.
	Kbps int
}

// DefaultLadder is 720p, 480p, 360p and audio only.
var DefaultLadder = []Rung{{Name: "720p", Height: 720}, {Name: "480p", Height: 480}, {Name: "360p", Height: 360}, {Name: "audio"}}

// audioKbps is the AAC bit rate of renditions whose audio is encoded.
const audioKbps = 128

// plan is what one ffmpeg run makes: the renditions that fit the source.
type plan struct {
	rungs     []planned
	video     int  // source track index of the video (-1: none)
	audio     int  // source track index of the audio (-1: none)
	copyAAC   bool // the source audio is AAC: renditions copy it
	srcWidth  int
	srcHeight int
}

// planned is a rung sized for a source.
type planned struct {
	Rung
	width, height int // 0 for audio only
	kbps          int // video (or audio-only) bit rate
}

// makePlan picks the rungs that fit the source tracks: video rungs smaller than the
// source (H.264 or H.265 video), and audio only when the source has audio. It returns
// no rungs when nothing can be made.
func makePlan(ladder []Rung, tracks []*unit.Track) plan {
	p := plan{video: -1, audio: -1}
	for i, t := range tracks {
		switch {
		case t == nil:
		case p.video < 0 && (t.Codec == unit.CodecH264 || t.Codec == unit.CodecH265):
			p.video = i
		case p.audio < 0 && (t.Codec == unit.CodecAAC || t.Codec == unit.CodecMP3 || t.Codec == unit.CodecOpus):
			p.audio = i
		}
	}
	if p.audio >= 0 {
		p.copyAAC = tracks[p.audio].Codec == unit.CodecAAC
	}
	if p.video >= 0 {
		p.srcWidth, p.srcHeight = cmaf.Resolution(tracks[p.video : p.video+1])
	}
	for _, r := range ladder {
		switch {
		case r.Height == 0:
			if p.audio < 0 || p.video < 0 {
				continue // an audio-only stream is its own audio rendition
			}
			k := r.Kbps
			if k == 0 {
				k = audioKbps
			}
			p.rungs = append(p.rungs, planned{Rung: r, kbps: k})
		case p.video >= 0 && p.srcHeight > 0 && r.Height < p.srcHeight:
			w := scaledWidth(p.srcWidth, p.srcHeight, r.Height)
			k := r.Kbps
			if k == 0 {
				k = defaultKbps(w, r.Height)
			}
			p.rungs = append(p.rungs, planned{Rung: r, width: w, height: r.Height, kbps: k})
		}
	}
	return p
}

// scaledWidth keeps the aspect ratio, rounded to an even width (what -2 does in ffmpeg's scale).
func scaledWidth(srcW, srcH, h int) int {
	if srcW <= 0 || srcH <= 0 {
		return h * 16 / 9 &^ 1
	}
	return int(math.Round(float64(srcW)*float64(h)/float64(srcH)/2)) * 2
}

// defaultKbps is about 0.09 bit per pixel at 30 frames per second: 720p gets 2,490 kbit/s,
// 480p 1,110, 360p 620.
func defaultKbps(w, h int) int {
	return int(math.Round(float64(w*h)*30*0.09/1000/10)) * 10
}

// Encoders.
const (
	EncoderX264  = "libx264"
	EncoderNVENC = "h264_nvenc"
	EncoderVAAPI = "h264_vaapi"
)

// ffmpegArgs returns the arguments of one ffmpeg run: MPEG-TS in on stdin, one MPEG-TS
// out per rung on fd 3, 4, … . Timestamps are kept (-copyts) so every rendition stays on
// the source's timeline, and key frames are forced where the source has them, so every
// rendition's GOPs (and so its segments) line up with the source's.
func ffmpegArgs(p plan, encoder, preset, vaapiDevice string) []string {
	args := []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning",
		"-fflags", "+nobuffer", "-probesize", "500000", "-analyzeduration", "500000"}
	if encoder == EncoderVAAPI {
		args = append(args, "-vaapi_device", vaapiDevice)
	}
	args = append(args, "-copyts", "-f", "mpegts", "-i", "pipe:0")
	for i, r := range p.rungs {
		if r.height == 0 {
			args = append(args, "-map", "0:"+strconv.Itoa(p.audio), "-vn", "-c:a", "aac",
				"-b:a", strconv.Itoa(r.kbps)+"k")
		} else {
			args = append(args, "-map", "0:"+strconv.Itoa(p.video))
			if p.audio >= 0 {
				args = append(args, "-map", "0:"+strconv.Itoa(p.audio))
			}
			args = append(args, videoArgs(r, encoder, preset)...)
			if p.audio >= 0 {
				if p.copyAAC {
					args = append(args, "-c:a", "copy")
				} else {
					args = append(args, "-c:a", "aac", "-b:a", strconv.Itoa(audioKbps)+"k")
				}
			}
		}
		args = append(args, "-muxdelay", "0", "-muxpreload", "0", "-flush_packets", "1",
			"-f", "mpegts", "pipe:"+strconv.Itoa(3+i))
	}
	return args
}

// videoArgs encodes one video rung: scaled, constrained bit rate, key frames where the
// source has them and nowhere else.
func videoArgs(r planned, encoder, preset string) []string {
	k := strconv.Itoa(r.kbps)
	buf := strconv.Itoa(r.kbps * 2)
	size := strconv.Itoa(r.width) + ":" + strconv.Itoa(r.height)
	var a []string
	switch encoder {
	case EncoderVAAPI:
		a = []string{"-vf", "format=nv12,hwupload,scale_vaapi=w=" + strconv.Itoa(r.width) + ":h=" + strconv.Itoa(r.height),
			"-c:v", EncoderVAAPI, "-bf", "0"}
	case EncoderNVENC:
		a = []string{"-vf", "scale=" + size, "-pix_fmt", "yuv420p", "-c:v", EncoderNVENC, "-bf", "0", "-zerolatency", "1"}
		if preset != "" {
			a = append(a, "-preset", nvencPreset(preset))
		}
	default:
		a = []string{"-vf", "scale=" + size, "-pix_fmt", "yuv420p", "-c:v", EncoderX264, "-tune", "zerolatency",
			"-x264-params", "scenecut=0:keyint=600:min-keyint=1"}
		if preset != "" {
			a = append(a, "-preset", preset)
		}
	}
	return append(a, "-b:v", k+"k", "-maxrate", k+"k", "-bufsize", buf+"k", "-force_key_frames", "source")
}

// nvencPreset maps libx264 preset names to NVENC's p1 (fastest) … p7 (best).
func nvencPreset(p string) string {
	switch p {
	case "ultrafast", "superfast":
		return "p1"
	case "veryfast":
		return "p2"
	case "faster", "fast":
		return "p3"
	case "medium":
		return "p4"
	case "slow":
		return "p5"
	case "slower":
		return "p6"
	case "veryslow", "placebo":
		return "p7"
	}
	return p
}
