package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/cmafstream"
	"github.com/onair/onair/internal/hls"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/relay"
	"github.com/onair/onair/internal/rtmp"
	"github.com/onair/onair/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testKey = "live_relaytestkey0123456789"

// locator is a fixed stream directory that counts its lookups.
type locator struct {
	mu      sync.Mutex
	origins map[string]relay.Origin
	calls   atomic.Int32
}

func (l *locator) Locate(_ context.Context, channel string) (relay.Origin, bool, error) {
	l.calls.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	o, ok := l.origins[channel]
	return o, ok, nil
}

func (l *locator) set(channel string, o relay.Origin) {
	l.mu.Lock()
	l.origins[channel] = o
	l.mu.Unlock()
}

// node is one in-process onair media node: hub, RTMP, CMAF and HLS, and on edges a
// relay Puller.
type node struct {
	name   string
	reg    *hub.Registry
	rtmp   *rtmp.Server
	cmaf   *cmafstream.Manager
	hls    *hls.Server
	http   *httptest.Server
	puller *relay.Puller
	logs   *testutil.LockedBuffer
}

type nodeOpts struct {
	locator    relay.Locator
	linger     time.Duration
	writeMerge time.Duration
}

func newNode(t testing.TB, name string, o nodeOpts) *node {
	t.Helper()
	logs := testutil.NewLockedBuffer()
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
	n := &node{name: name, logs: logs}
	n.reg = &hub.Registry{Logger: logger, GracePeriod: -1}
	require.NoError(t, n.reg.Start())
	n.rtmp = &rtmp.Server{
		Addr: "127.0.0.1:0",
		Hub:  n.reg,
		Authorize: func(_ context.Context, key onair.StreamKey) (string, error) {
			if key.Reveal() == testKey {
				return "alice", nil
			}
			return "", onair.Errorf(onair.ENOTFOUND, "Stream key not found.")
		},
		Logger:           logger,
		WriteMergeWindow: o.writeMerge,
	}
	require.NoError(t, n.rtmp.Start())
	n.cmaf = &cmafstream.Manager{Hub: n.reg, Logger: logger, IdleTimeout: time.Second}
	require.NoError(t, n.cmaf.Start())
	n.hls = &hls.Server{Hub: n.reg, CMAF: n.cmaf, PartTarget: n.cmaf.PartTarget, Logger: logger, IdleTimeout: time.Second}
	require.NoError(t, n.hls.Start())
	n.http = httptest.NewServer(n.hls)
	if o.locator != nil {
		n.puller = &relay.Puller{
			Hub:     n.reg,
			Locator: o.locator,
			Node:    name,
			Pull: func(ctx context.Context, origin relay.Origin, channel string, live func()) error {
				return n.rtmp.Pull(ctx, origin.RTMPAddr, channel, live)
			},
			Linger:        o.linger,
			CheckInterval: 100 * time.Millisecond,
			Logger:        logger,
		}
		require.NoError(t, n.puller.Start())
		n.reg.Locate = n.puller.Ensure
	}
	t.Cleanup(func() {
		n.http.Close()
		if n.puller != nil {
			n.puller.Close()
		}
		n.hls.Close()
		n.cmaf.Close()
		n.rtmp.Close()
		n.reg.Close()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, logs.String())
		}
	})
	return n
}

func (n *node) origin() relay.Origin {
	return relay.Origin{Node: n.name, RTMPAddr: n.rtmp.ListenAddr().String(), HTTPAddr: n.http.URL}
}

func (n *node) rtmpURL(app, name string) string {
	return fmt.Sprintf("rtmp://%s/%s/%s", n.rtmp.ListenAddr(), app, name)
}

// publish streams a live test picture and tone to n with ffmpeg until the test ends.
func (n *node) publish(t testing.TB) *testutil.Process {
	t.Helper()
	testutil.RequireFFmpeg(t)
	args := []string{"-hide_banner", "-loglevel", "error", "-re"}
	args = append(args, testutil.LavfiInput(true, true, "320x240", 30, 44100)...)
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30",
		"-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", n.rtmpURL("live", testKey))
	p := testutil.Start(t, context.Background(), "ffmpeg", args...)
	require.Eventually(t, func() bool {
		st := n.reg.Stream("alice")
		return st != nil && st.Publishing()
	}, 15*time.Second, 20*time.Millisecond, "origin never went live: %s", p.Output())
	return p
}

// probe returns the codec names ffprobe finds at u.
func probe(t *testing.T, u string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
		"-of", "json", u).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("ffprobe %s: %v: %s", u, err, ee.Stderr)
	}
	require.NoError(t, err)
	var res struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
		} `json:"streams"`
	}
	require.NoError(t, json.Unmarshal(out, &res))
	var names []string
	for _, s := range res.Streams {
		names = append(names, s.CodecName)
	}
	return names
}

// playRTMP connects a player to u.
func playRTMP(t testing.TB, u string) *gortmplib.Client {
	t.Helper()
	pu, err := url.Parse(u)
	require.NoError(t, err)
	c := &gortmplib.Client{URL: pu}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, c.Initialize(ctx))
	t.Cleanup(c.Close)
	return c
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	res, err := http.Get(u)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

// relayConns returns the origin's connections that play a channel for a relay.
func relayConns(n *node) int {
	c := 0
	for _, ci := range n.rtmp.Conns() {
		if ci.State == rtmp.ConnPlaying {
			c++
		}
	}
	return c
}

func TestRelay(t *testing.T) {
	loc := &locator{origins: map[string]relay.Origin{}}
	a := newNode(t, "a", nodeOpts{})
	b := newNode(t, "b", nodeOpts{locator: loc, linger: 500 * time.Millisecond})
	loc.set("alice", a.origin())
	pub := a.publish(t)

	t.Run("rtmp", func(t *testing.T) {
		require.Equal(t, []string{"h264", "aac"}, probe(t, b.rtmpURL("live", "alice")))
		st := b.reg.Stream("alice")
		require.NotNil(t, st, "the pull outlives its viewer for the linger time")
		require.Equal(t, hub.SourceRelay, st.Source())
		require.Equal(t, map[string]relay.Origin{"alice": a.origin()}, b.puller.Pulls())
		require.Equal(t, 1, relayConns(a))
	})

	t.Run("stops after the last viewer", func(t *testing.T) {
		require.Eventually(t, func() bool { return b.reg.Stream("alice") == nil }, 10*time.Second, 20*time.Millisecond)
		require.Eventually(t, func() bool { return relayConns(a) == 0 }, 5*time.Second, 20*time.Millisecond)
		require.Empty(t, b.puller.Pulls())
		require.NotNil(t, a.reg.Stream("alice"), "the origin is untouched")
	})

	t.Run("hls", func(t *testing.T) {
		require.Equal(t, []string{"h264", "aac"}, probe(t, b.http.URL+"/alice/index.m3u8"))
		code, _ := get(t, b.http.URL+"/alice/ts/index.m3u8")
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, 1, relayConns(a), "one pull serves every output")
		// The HLS segmenters close after their idle time, then the pull lingers and stops.
		require.Eventually(t, func() bool { return b.reg.Stream("alice") == nil }, 15*time.Second, 50*time.Millisecond)
	})

	t.Run("concurrent viewers share one pull", func(t *testing.T) {
		before := loc.calls.Load()
		var wg sync.WaitGroup
		var ok atomic.Int32
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if b.reg.Lookup(context.Background(), "alice") != nil {
					ok.Add(1)
				}
			}()
		}
		wg.Wait()
		require.Equal(t, int32(10), ok.Load())
		require.Equal(t, int32(1), loc.calls.Load()-before)
		require.Equal(t, 1, relayConns(a))
	})

	t.Run("origin stream ends", func(t *testing.T) {
		player := playRTMP(t, b.rtmpURL("live", "alice"))
		require.NoError(t, player.NetConn().SetReadDeadline(time.Now().Add(15*time.Second)))
		code, _ := get(t, b.http.URL+"/alice/stream.m3u8")
		require.Equal(t, http.StatusOK, code)
		pub.Stop() // the broadcaster goes away; the origin has no grace window here
		var status string
		var err error
		for {
			var msg message.Message
			if msg, err = player.Read(); err != nil {
				break
			}
			if cmd, ok := msg.(*message.CommandAMF0); ok && cmd.Name == "onStatus" {
				status = fmt.Sprint(cmd.Arguments)
			}
		}
		require.ErrorIs(t, err, io.EOF, "the edge's player sees a clean end")
		require.Contains(t, status, "NetStream.Play.Stop")
		require.Nil(t, b.reg.Stream("alice"))
		// The edge's segmenter sees the end on its own goroutine, just after the hub does.
		require.Eventually(t, func() bool {
			_, body := get(t, b.http.URL+"/alice/stream.m3u8")
			return strings.Contains(body, "#EXT-X-ENDLIST")
		}, 3*time.Second, 50*time.Millisecond, "the edge's playlist never ended")
		require.Eventually(t, func() bool { return len(b.puller.Pulls()) == 0 }, 5*time.Second, 20*time.Millisecond)
	})

	t.Run("offline", func(t *testing.T) {
		loc.mu.Lock()
		delete(loc.origins, "alice")
		loc.mu.Unlock()
		require.Nil(t, b.reg.Lookup(context.Background(), "alice"))
		code, _ := get(t, b.http.URL+"/bob/index.m3u8")
		require.Equal(t, http.StatusNotFound, code)
	})
}

func TestRelayOriginDies(t *testing.T) {
	loc := &locator{origins: map[string]relay.Origin{}}
	a := newNode(t, "a", nodeOpts{})
	b := newNode(t, "b", nodeOpts{locator: loc})
	loc.set("alice", a.origin())
	a.publish(t)

	player := playRTMP(t, b.rtmpURL("live", "alice"))
	require.NoError(t, player.NetConn().SetReadDeadline(time.Now().Add(15*time.Second)))
	a.rtmp.Close() // every connection of the origin drops, as when it is killed
	var err error
	for err == nil {
		_, err = player.Read()
	}
	require.ErrorIs(t, err, io.EOF, "the edge's player sees the stream end")
	require.Nil(t, b.reg.Stream("alice"))
	require.Eventually(t, func() bool { return len(b.puller.Pulls()) == 0 }, 5*time.Second, 20*time.Millisecond)
}

// The directory may still name this node for a stream that just ended here: no pull.
func TestRelaySelfAndUnreachable(t *testing.T) {
	loc := &locator{origins: map[string]relay.Origin{}}
	b := newNode(t, "b", nodeOpts{locator: loc})
	loc.set("alice", b.origin())
	require.False(t, b.puller.Ensure(context.Background(), "alice"))

	loc.set("alice", relay.Origin{Node: "gone", RTMPAddr: "127.0.0.1:1"})
	require.False(t, b.puller.Ensure(context.Background(), "alice"))
	require.Eventually(t, func() bool { return len(b.puller.Pulls()) == 0 }, 5*time.Second, 20*time.Millisecond)
	require.Contains(t, b.logs.String(), "relay failed")
	require.False(t, strings.Contains(b.logs.String(), testKey))
}
