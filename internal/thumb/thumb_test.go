package thumb

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/testutil"
	"github.com/onair/onair/internal/unit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func mustRegistry(t *testing.T) *hub.Registry {
	t.Helper()
	reg := &hub.Registry{GracePeriod: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	require.NoError(t, reg.Start())
	t.Cleanup(reg.Close)
	return reg
}

// mustThumbnailer starts a Thumbnailer whose loop never ticks on its own in the test's
// time (tests call refresh), unless interval is set.
func mustThumbnailer(t *testing.T, reg *hub.Registry, interval time.Duration) *Thumbnailer {
	t.Helper()
	if interval == 0 {
		interval = time.Hour
	}
	th := &Thumbnailer{Hub: reg, Interval: interval, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	require.NoError(t, th.Start())
	t.Cleanup(th.Close)
	return th
}

func decodeJPEG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, format, err := image.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	require.Equal(t, "jpeg", format)
	return img
}

// TestThumbnailFromKeyUnit publishes real H.264 and H.265 media GOP by GOP and checks that
// each refresh decodes the GOP's key unit into a new 320-pixel JPEG, and that the preview
// strip holds the recent frames side by side.
func TestThumbnailFromKeyUnit(t *testing.T) {
	for _, kind := range []string{"h264_aac", "h265_aac"} {
		t.Run(kind, func(t *testing.T) {
			med := testutil.MustMedia(t, kind)
			reg := mustRegistry(t)
			th := mustThumbnailer(t, reg, 0)
			require.True(t, th.Enabled())
			p, err := reg.Publish("alice", med.Tracks)
			require.NoError(t, err)
			defer p.Close()
			keys := med.KeyIndexes()
			require.GreaterOrEqual(t, len(keys), 3)

			ctx := context.Background()
			etags := map[string]bool{}
			from := 0
			for i := 1; i <= 3; i++ {
				// One more GOP and the key unit that starts the next one (the cached GOP).
				require.NoError(t, testutil.PublishMedia(ctx, p, med, testutil.PublishOpts{From: from, To: keys[i] + 1}))
				from = keys[i] + 1
				th.refresh(ctx)
				img, ok := th.Thumbnail("alice")
				require.True(t, ok, "no thumbnail after GOP %d", i)
				pic := decodeJPEG(t, img.JPEG)
				require.Equal(t, 320, pic.Bounds().Dx())
				require.Equal(t, 180, pic.Bounds().Dy())
				etags[img.ETag] = true
				require.Len(t, etags, i, "the thumbnail did not change with the GOP")

				strip, n, ok := th.Preview("alice")
				require.True(t, ok)
				require.Equal(t, i, n)
				require.Equal(t, 320*i, decodeJPEG(t, strip.JPEG).Bounds().Dx())
			}
			// The same GOP again: no new decode, no new frame.
			th.refresh(ctx)
			_, n, _ := th.Preview("alice")
			require.Equal(t, 3, n)

			// An ended stream loses its thumbnails.
			reg.End("alice")
			th.refresh(ctx)
			_, ok := th.Thumbnail("alice")
			require.False(t, ok)
		})
	}
}

// TestThumbnailRefreshAndPreview runs the loop with a short interval on a stream published
// at real-time pace: the thumbnail changes as the stream goes on, and the strip fills up
// to PreviewFrames frames side by side.
func TestThumbnailRefreshAndPreview(t *testing.T) {
	med := testutil.MustMedia(t, "h264_aac")
	reg := mustRegistry(t)
	p, err := reg.Publish("alice", med.Tracks)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- testutil.PublishMedia(ctx, p, med, testutil.PublishOpts{Speed: 1, Loops: 10}) }()
	defer func() {
		cancel()
		<-done
		p.Close()
	}()
	th := mustThumbnailer(t, reg, 300*time.Millisecond)

	var first Image
	require.Eventually(t, func() bool {
		var ok bool
		first, ok = th.Thumbnail("alice")
		return ok
	}, 15*time.Second, 50*time.Millisecond, "no thumbnail")
	require.Eventually(t, func() bool {
		img, ok := th.Thumbnail("alice")
		return ok && img.ETag != first.ETag && img.Time.After(first.Time)
	}, 15*time.Second, 50*time.Millisecond, "the thumbnail never changed")
	require.Eventually(t, func() bool {
		_, n, ok := th.Preview("alice")
		return ok && n == DefaultPreviewFrames
	}, 20*time.Second, 50*time.Millisecond, "the preview strip never filled")
	strip, _, _ := th.Preview("alice")
	pic := decodeJPEG(t, strip.JPEG)
	require.Equal(t, 320*DefaultPreviewFrames, pic.Bounds().Dx())
	require.Equal(t, 180, pic.Bounds().Dy())

	// Served over HTTP with short cache headers and validators.
	srv := httptest.NewServer(th)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/thumb/alice.jpg")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "image/jpeg", res.Header.Get("Content-Type"))
	require.Equal(t, "public, max-age=5", res.Header.Get("Cache-Control"))
	decodeJPEG(t, body)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/thumb/alice.jpg", nil)
	req.Header.Set("If-None-Match", res.Header.Get("ETag"))
	res2, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res2.Body.Close()
	require.Contains(t, []int{http.StatusNotModified, http.StatusOK}, res2.StatusCode) // 200 if it changed meanwhile

	res, err = http.Get(srv.URL + "/thumb/alice/preview.jpg")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, strconv.Itoa(DefaultPreviewFrames), res.Header.Get("X-Preview-Frames"))
}

func TestThumbnailAudioOnly(t *testing.T) {
	med := testutil.MustMedia(t, "aac")
	reg := mustRegistry(t)
	th := mustThumbnailer(t, reg, 0)
	p, err := reg.Publish("radio", med.Tracks)
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, testutil.PublishMedia(context.Background(), p, med, testutil.PublishOpts{}))
	th.refresh(context.Background())
	_, ok := th.Thumbnail("radio")
	require.False(t, ok)
}

// TestThumbnailSkipsDerived: a rendition made from a stream (transcoding) gets no
// thumbnail of its own.
func TestThumbnailSkipsDerived(t *testing.T) {
	med := testutil.MustMedia(t, "h264_aac")
	reg := mustRegistry(t)
	th := mustThumbnailer(t, reg, 0)
	p, err := reg.PublishFrom("alice_360p", med.Tracks, hub.SourceDerived)
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, testutil.PublishMedia(context.Background(), p, med, testutil.PublishOpts{To: med.KeyIndexes()[1] + 1}))
	th.refresh(context.Background())
	_, ok := th.Thumbnail("alice_360p")
	require.False(t, ok)
}

// TestThumbnailWithoutFFmpeg: no ffmpeg means no thumbnails, no loop and 404s, no error.
func TestThumbnailWithoutFFmpeg(t *testing.T) {
	reg := mustRegistry(t)
	var logs bytes.Buffer
	th := &Thumbnailer{Hub: reg, FFmpeg: "onair-no-such-ffmpeg", Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	require.NoError(t, th.Start())
	defer th.Close()
	require.False(t, th.Enabled())
	require.Contains(t, logs.String(), "ffmpeg not found")
	p, err := reg.Publish("alice", []*unit.Track{{Codec: unit.CodecH264, SPS: []byte{0x67}, PPS: []byte{0x68}}})
	require.NoError(t, err)
	defer p.Close()
	rec := httptest.NewRecorder()
	th.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/thumb/alice.jpg", nil))
	require.Equal(t, http.StatusNotFound, rec.Code)
}

func TestServeHTTPPaths(t *testing.T) {
	th := &Thumbnailer{thumbs: map[string]*channelThumbs{}}
	jpg := mustJPEG(t, 32, 18)
	th.thumbs["alice"] = &channelThumbs{frames: []Image{newImage(jpg, time.Unix(1700000000, 0))}, preview: newImage(jpg, time.Unix(1700000000, 0))}
	cases := []struct {
		name, method, path string
		status             int
	}{
		{"thumbnail", http.MethodGet, "/thumb/alice.jpg", http.StatusOK},
		{"head", http.MethodHead, "/thumb/alice.jpg", http.StatusOK},
		{"preview", http.MethodGet, "/thumb/alice/preview.jpg", http.StatusOK},
		{"unknown channel", http.MethodGet, "/thumb/bob.jpg", http.StatusNotFound},
		{"bad name", http.MethodGet, "/thumb/Al..ice.jpg", http.StatusNotFound},
		{"traversal", http.MethodGet, "/thumb/../alice.jpg", http.StatusNotFound},
		{"no extension", http.MethodGet, "/thumb/alice", http.StatusNotFound},
		{"post", http.MethodPost, "/thumb/alice.jpg", http.StatusMethodNotAllowed},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			th.ServeHTTP(rec, httptest.NewRequest(ca.method, ca.path, nil))
			require.Equal(t, ca.status, rec.Code)
			if ca.status == http.StatusOK {
				require.Equal(t, "image/jpeg", rec.Header().Get("Content-Type"))
				require.NotEmpty(t, rec.Header().Get("ETag"))
			}
		})
	}
}

func mustJPEG(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, w, h)), nil))
	return b.Bytes()
}

func TestAnnexB(t *testing.T) {
	u := &unit.Unit{Key: true, Payload: [][]byte{{0x65, 1, 2}}}
	cases := []struct {
		name  string
		track *unit.Track
		want  []byte
		err   bool
	}{
		{"h264", &unit.Track{Codec: unit.CodecH264, SPS: []byte{0x67, 9}, PPS: []byte{0x68}},
			[]byte{0, 0, 0, 1, 0x67, 9, 0, 0, 0, 1, 0x68, 0, 0, 0, 1, 0x65, 1, 2}, false},
		{"h265", &unit.Track{Codec: unit.CodecH265, VPS: []byte{0x40}, SPS: []byte{0x42}, PPS: []byte{0x44}},
			[]byte{0, 0, 0, 1, 0x40, 0, 0, 0, 1, 0x42, 0, 0, 0, 1, 0x44, 0, 0, 0, 1, 0x65, 1, 2}, false},
		{"h264 without parameter sets", &unit.Track{Codec: unit.CodecH264},
			[]byte{0, 0, 0, 1, 0x65, 1, 2}, false},
		{"av1", &unit.Track{Codec: unit.CodecAV1}, nil, true},
		{"aac", &unit.Track{Codec: unit.CodecAAC}, nil, true},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			got, err := annexB(ca.track, u)
			if ca.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, ca.want, got)
		})
	}
}
