// Package recordtest holds the test helpers of the recorder and the VOD server: real
// media made by the ffmpeg binary, demuxed into hub units, and a publisher that writes
// them into a hub at a chosen speed. Media is never mocked.
package recordtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/testutil"
	"github.com/onair/onair/internal/unit"
)

// Options describe the media to make: H.264 video (testsrc2) and AAC audio (a sine).
type Options struct {
	// Seconds is the length. Default: 4.
	Seconds int
	// Size is the picture size. Default: 320x180.
	Size string
	// FPS is the frame rate. Default: 30.
	FPS int
	// GOP is the keyframe interval in frames. Default: FPS (one second).
	GOP int
	// VideoBitrate is the x264 bit rate ("3M"); empty lets x264 choose (CRF).
	VideoBitrate string
	// NoAudio leaves the audio track out.
	NoAudio bool
}

func (o Options) withDefaults() Options {
	if o.Seconds <= 0 {
		o.Seconds = 4
	}
	if o.Size == "" {
		o.Size = "320x180"
	}
	if o.FPS <= 0 {
		o.FPS = 30
	}
	if o.GOP <= 0 {
		o.GOP = o.FPS
	}
	return o
}

// Media is real media demuxed into hub units, as the ingest delivers them: video key
// units carry their parameter sets in band.
type Media struct {
	Tracks []*unit.Track
	// Units are sorted by DTS, the first at 0; Publish copies them.
	Units []*unit.Unit
	// Length is the duration, up to the end of the last frame.
	Length time.Duration
	// Bytes is the size of the payloads.
	Bytes int
}

var (
	mu    sync.Mutex
	cache = map[Options]*Media{}
)

// MustMedia returns media made by ffmpeg with o, made once per test binary.
func MustMedia(tb testing.TB, o Options) *Media {
	tb.Helper()
	testutil.RequireFFmpeg(tb)
	o = o.withDefaults()
	mu.Lock()
	defer mu.Unlock()
	if m := cache[o]; m != nil {
		return m
	}
	ts, err := MakeTS(o)
	require.NoError(tb, err)
	m, err := Demux(bytes.NewReader(ts))
	require.NoError(tb, err)
	cache[o] = m
	return m
}

// MakeTS runs ffmpeg and returns the media of o as MPEG-TS.
func MakeTS(o Options) ([]byte, error) {
	o = o.withDefaults()
	args := []string{"-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=" + o.Size + ":rate=" + strconv.Itoa(o.FPS)}
	if !o.NoAudio {
		args = append(args, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000")
	}
	args = append(args, "-map", "0:v", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
		"-g", strconv.Itoa(o.GOP), "-keyint_min", strconv.Itoa(o.GOP), "-sc_threshold", "0")
	if o.VideoBitrate != "" {
		args = append(args, "-b:v", o.VideoBitrate, "-maxrate", o.VideoBitrate, "-bufsize", o.VideoBitrate)
	}
	if !o.NoAudio {
		args = append(args, "-map", "1:a", "-c:a", "aac", "-b:a", "128k")
	}
	args = append(args, "-t", strconv.Itoa(o.Seconds), "-f", "mpegts", "-")
	cmd := exec.Command("ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ffmpeg: %w: %s", err, stderr.String())
	}
	return out, nil
}

// Demux reads MPEG-TS into hub tracks and units with testutil's demuxer, and adds the
// sizes the recorder tests compare against.
func Demux(rd io.Reader) (*Media, error) {
	tm, err := testutil.DemuxTS(rd)
	if err != nil {
		return nil, err
	}
	m := &Media{Tracks: tm.Tracks, Units: tm.Units, Length: tm.Length}
	for _, u := range m.Units {
		u.Size = 0
		for _, p := range u.Payload {
			u.Size += len(p)
		}
		m.Bytes += u.Size
	}
	return m, nil
}

// Publish writes copies of m's units into p, paced at speed times real time (0: as fast
// as the hub takes them). It stops early when ctx is done or the hub refuses a unit.
func Publish(ctx context.Context, p *hub.Publisher, m *Media, speed float64) error {
	start := time.Now()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for _, tu := range m.Units {
		if speed > 0 {
			if wait := time.Until(start.Add(time.Duration(float64(tu.DTS) / speed))); wait > 0 {
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
		u := &unit.Unit{Track: tu.Track, DTS: tu.DTS, PTS: tu.PTS, Key: tu.Key, Payload: tu.Payload, Size: tu.Size}
		if err := p.WriteUnit(u); err != nil {
			return err
		}
	}
	return nil
}

// MustPublish publishes m on the named stream of reg at speed, and closes the publisher.
func MustPublish(tb testing.TB, reg *hub.Registry, name string, m *Media, speed float64) {
	tb.Helper()
	p, err := reg.Publish(name, m.Tracks)
	require.NoError(tb, err)
	defer p.Close()
	require.NoError(tb, Publish(tb.Context(), p, m, speed))
}
