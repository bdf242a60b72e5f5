// Package thumb makes live thumbnails: every Interval, for each live stream with an
// H.264 or H.265 track, the key unit at the start of the hub's cached GOP is written as an
// Annex-B access unit (parameter sets first) to an ffmpeg child process, which decodes it
// and returns one scaled JPEG. The last few thumbnails of a stream also form a preview
// strip (the frames side by side) for the hover preview of live cards.
//
// Without ffmpeg there are no thumbnails: Start says so once and the handler answers 404.
// At most Concurrency ffmpeg processes run at once, each bounded by Timeout, in its own
// process group, killed with the group when its context ends and (on Linux) when onair dies.
package thumb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"os/exec"
	"sync"
	"time"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/unit"
)

// Defaults of the Thumbnailer fields left zero.
const (
	DefaultInterval      = 10 * time.Second
	DefaultWidth         = 320
	DefaultConcurrency   = 2
	DefaultTimeout       = 5 * time.Second
	DefaultPreviewFrames = 4
)

// maxKeyUnitBytes bounds the access unit sent to ffmpeg (a 4K intra frame is a few MB).
const maxKeyUnitBytes = 16 << 20

// Thumbnailer keeps a fresh thumbnail of every live stream of a hub.
type Thumbnailer struct {
	// Hub is the registry whose streams get thumbnails. Required.
	Hub *hub.Registry
	// FFmpeg is the ffmpeg binary, looked up on PATH. Default: "ffmpeg".
	FFmpeg string
	// Interval is the time between two thumbnails of a stream. Default: DefaultInterval.
	Interval time.Duration
	// Width is the thumbnail width in pixels (the height keeps the aspect ratio). Default:
	// DefaultWidth.
	Width int
	// Concurrency bounds the ffmpeg processes running at once. Default: DefaultConcurrency.
	Concurrency int
	// Timeout bounds one decode. Default: DefaultTimeout.
	Timeout time.Duration
	// PreviewFrames is how many recent thumbnails the preview strip holds. Default:
	// DefaultPreviewFrames.
	PreviewFrames int
	// Logger receives lifecycle and failure logs. Default: slog.Default().
	Logger *slog.Logger
	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	ffmpeg string // resolved path; empty when ffmpeg is missing
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	thumbs map[string]*channelThumbs
}

// Image is one encoded picture with what HTTP caching needs.
type Image struct {
	JPEG []byte
	Time time.Time // when it was made
	ETag string    // quoted strong validator
}

// channelThumbs is what a stream has: its recent frames (oldest first) and their strip.
type channelThumbs struct {
	frames  []Image
	preview Image
	lastKey keyID // the key unit the newest frame was made from
	failed  bool  // the last decode failed (logged once until one succeeds)
}

// keyID identifies a key unit of a stream across snapshots.
type keyID struct {
	dts  time.Duration
	size int
}

// Start resolves ffmpeg and starts the refresh loop. Without ffmpeg it logs that once and
// returns nil: the Thumbnailer then has no thumbnails.
func (t *Thumbnailer) Start() error {
	if t.Hub == nil {
		return errors.New("thumb: hub is required")
	}
	if t.Interval < 0 || t.Width < 0 || t.Concurrency < 0 || t.Timeout < 0 || t.PreviewFrames < 0 {
		return errors.New("thumb: sizes and durations must not be negative")
	}
	if t.FFmpeg == "" {
		t.FFmpeg = "ffmpeg"
	}
	if t.Interval == 0 {
		t.Interval = DefaultInterval
	}
	if t.Width == 0 {
		t.Width = DefaultWidth
	}
	if t.Concurrency == 0 {
		t.Concurrency = DefaultConcurrency
	}
	if t.Timeout == 0 {
		t.Timeout = DefaultTimeout
	}
	if t.PreviewFrames == 0 {
		t.PreviewFrames = DefaultPreviewFrames
	}
	if t.Logger == nil {
		t.Logger = slog.Default()
	}
	if t.Now == nil {
		t.Now = time.Now
	}
	t.thumbs = make(map[string]*channelThumbs)
	path, err := exec.LookPath(t.FFmpeg)
	if err != nil {
		t.Logger.Info("ffmpeg not found, live streams get no thumbnails", "ffmpeg", t.FFmpeg)
		return nil
	}
	t.ffmpeg = path
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(1)
	go t.run()
	return nil
}

// Close stops the refresh loop, kills running ffmpeg processes and waits for them.
func (t *Thumbnailer) Close() {
	if t.cancel != nil {
		t.cancel()
	}
	t.wg.Wait()
}

// Enabled reports whether thumbnails are made (ffmpeg was found).
func (t *Thumbnailer) Enabled() bool { return t.ffmpeg != "" }

// Thumbnail returns the newest thumbnail of a live channel.
func (t *Thumbnailer) Thumbnail(channel string) (Image, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ct := t.thumbs[channel]
	if ct == nil || len(ct.frames) == 0 {
		return Image{}, false
	}
	return ct.frames[len(ct.frames)-1], true
}

// Preview returns the preview strip of a live channel and how many frames it holds.
func (t *Thumbnailer) Preview(channel string) (Image, int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ct := t.thumbs[channel]
	if ct == nil || len(ct.preview.JPEG) == 0 {
		return Image{}, 0, false
	}
	return ct.preview, len(ct.frames), true
}

func (t *Thumbnailer) run() {
	defer t.wg.Done()
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
		}
		t.refresh(t.ctx)
	}
}

// refresh makes one thumbnail of every live stream whose key unit changed, at most
// Concurrency at a time, and forgets the streams that are no longer live.
func (t *Thumbnailer) refresh(ctx context.Context) {
	streams := t.Hub.Streams()
	live := make(map[string]bool, len(streams))
	sem := make(chan struct{}, t.Concurrency)
	var wg sync.WaitGroup
	for _, s := range streams {
		if s.Ended() || s.Source() == hub.SourceDerived {
			continue // renditions made from a stream share its picture
		}
		live[s.Name()] = true
		track, key := keyUnit(s)
		if key == nil {
			continue
		}
		id := keyID{dts: key.DTS, size: key.Size}
		t.mu.Lock()
		ct := t.thumbs[s.Name()]
		same := ct != nil && ct.lastKey == id && len(ct.frames) > 0
		t.mu.Unlock()
		if same {
			continue // the GOP did not move on (a long GOP): the thumbnail is still fresh
		}
		au, err := annexB(track, key)
		if err != nil {
			continue // AV1 and audio-only streams: no thumbnail
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func(name string, codec unit.Codec, au []byte) {
			defer wg.Done()
			defer func() { <-sem }()
			t.make(ctx, name, codec, au, id)
		}(s.Name(), track.Codec, au)
	}
	wg.Wait()
	t.mu.Lock()
	for name := range t.thumbs {
		if !live[name] {
			delete(t.thumbs, name)
		}
	}
	t.mu.Unlock()
}

// make decodes one access unit and stores the thumbnail.
func (t *Thumbnailer) make(ctx context.Context, name string, codec unit.Codec, au []byte, id keyID) {
	ctx, cancel := context.WithTimeout(ctx, t.Timeout)
	defer cancel()
	img, err := decode(ctx, t.ffmpeg, codec, au, t.Width)
	t.mu.Lock()
	defer t.mu.Unlock()
	ct := t.thumbs[name]
	if ct == nil {
		ct = &channelThumbs{}
		t.thumbs[name] = ct
	}
	if err != nil {
		if !ct.failed && t.ctx.Err() == nil {
			t.Logger.Warn("thumbnail not made", "channel", name, "err", err)
		}
		ct.failed = true
		return
	}
	ct.failed = false
	ct.lastKey = id
	now := t.Now()
	ct.frames = append(ct.frames, newImage(img, now))
	if n := len(ct.frames) - t.PreviewFrames; n > 0 {
		ct.frames = append(ct.frames[:0], ct.frames[n:]...)
	}
	if strip, err := strip(ct.frames); err == nil {
		ct.preview = newImage(strip, now)
	} else {
		t.Logger.Warn("preview strip not made", "channel", name, "err", err)
	}
}

func newImage(b []byte, now time.Time) Image {
	sum := sha256.Sum256(b)
	return Image{JPEG: b, Time: now, ETag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

// keyUnit returns the first video key unit of the stream's cached GOP and its track, or a
// nil unit when the stream has none (no video, or no GOP cached yet). It attaches a
// reader for a moment: the hub hands a new reader the tracks and the cached GOP.
func keyUnit(s *hub.Stream) (*unit.Track, *unit.Unit) {
	r, err := s.AddReader("thumb")
	if err != nil {
		return nil, nil
	}
	evs, _ := r.TryReadBatch(nil)
	r.Close()
	var tracks []*unit.Track
	for _, ev := range evs {
		if ev.Tracks != nil {
			tracks = ev.Tracks
			continue
		}
		u := ev.Unit
		if u == nil || !u.Key || u.Track < 0 || u.Track >= len(tracks) || !tracks[u.Track].IsVideo() {
			continue
		}
		return tracks[u.Track], u
	}
	return nil, nil
}

// errCodec is returned for a codec ffmpeg is not given raw access units of.
var errCodec = errors.New("thumb: codec not supported")

// annexB returns the key unit as an Annex-B byte stream (4-byte start codes) with the
// track's parameter sets first, as `ffmpeg -f h264` / `-f hevc` read it.
func annexB(track *unit.Track, u *unit.Unit) ([]byte, error) {
	var nalus [][]byte
	switch track.Codec {
	case unit.CodecH264:
		nalus = [][]byte{track.SPS, track.PPS}
	case unit.CodecH265:
		nalus = [][]byte{track.VPS, track.SPS, track.PPS}
	default:
		return nil, errCodec
	}
	nalus = append(nalus, u.Payload...)
	var b bytes.Buffer
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		if b.Len()+4+len(n) > maxKeyUnitBytes {
			return nil, errors.New("thumb: key unit too large")
		}
		b.Write([]byte{0, 0, 0, 1})
		b.Write(n)
	}
	return b.Bytes(), nil
}
