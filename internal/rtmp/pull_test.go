package rtmp

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/hub"
)

// pullResult is the outcome of a Pull run in the background.
type pullResult struct {
	live chan struct{}
	done chan error
}

func startPull(ctx context.Context, edge, origin *testEnv, channel string) *pullResult {
	pr := &pullResult{live: make(chan struct{}), done: make(chan error, 1)}
	addr := fmt.Sprintf("127.0.0.1:%d", origin.srv.Port())
	go func() { pr.done <- edge.srv.Pull(ctx, addr, channel, func() { close(pr.live) }) }()
	return pr
}

func (pr *pullResult) waitLive(t *testing.T) {
	t.Helper()
	select {
	case <-pr.live:
	case err := <-pr.done:
		t.Fatalf("pull ended before going live: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("pull never went live")
	}
}

func (pr *pullResult) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-pr.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("pull did not return")
		return nil
	}
}

func TestServerPull(t *testing.T) {
	cases := []struct {
		name  string
		file  string
		codec []string
	}{
		{"h264 aac", "h264_aac.flv", []string{"h264", "aac"}},
		{"mp3 only", "mp3_22k.flv", []string{"mp3"}},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			origin, edge := newTestEnv(t), newTestEnv(t)
			pub := origin.publishFile(media(t, ca.file), "live", keyOf("alice"), false)
			ost := origin.waitLive("alice")

			pr := startPull(context.Background(), edge, origin, "alice")
			pr.waitLive(t)
			st := edge.reg.Stream("alice")
			require.NotNil(t, st)
			require.Equal(t, hub.SourceRelay, st.Source())
			require.Len(t, st.Tracks(), len(ost.Tracks()))
			for i, tr := range st.Tracks() {
				require.True(t, sameTrack(ost.Tracks()[i], tr), "track %d: %+v, origin %+v", i, tr, ost.Tracks()[i])
			}
			require.Equal(t, map[string]int{"relay": 1}, ost.Readers(), "the pull is no RTMP viewer of the origin")
			conns := edge.srv.Conns()
			require.Len(t, conns, 1)
			require.Equal(t, ConnPublishing, conns[0].State)
			require.Equal(t, "alice", conns[0].Channel)

			r, err := st.AddReader("test")
			require.NoError(t, err)
			defer r.Close()
			_, units := readEvents(t, r, 20, 5*time.Second)
			require.Len(t, units, 20)
			for _, u := range units {
				require.GreaterOrEqual(t, u.PTS, u.DTS)
			}
			require.Equal(t, codecNames(ffprobe(t, edge.url("live", "alice"))), ca.codec, "the edge plays it back")

			// The publisher stops: the origin ends its stream (no grace in testEnv), and
			// so does the edge, at once.
			require.NoError(t, pub.wait(t, 15*time.Second))
			require.NoError(t, pr.wait(t), "the origin ended the stream")
			require.Nil(t, edge.reg.Stream("alice"))
			require.True(t, st.Ended())
			edge.requireNoKeyInLogs()
			origin.requireNoKeyInLogs()
		})
	}
}

func TestServerPullStops(t *testing.T) {
	origin := newTestEnv(t, func(_ *Server, reg *hub.Registry) { reg.GracePeriod = time.Minute })
	edge := newTestEnv(t)
	origin.publishFile(media(t, "h264_aac.flv"), "live", keyOf("alice"), true)
	origin.waitLive("alice")

	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		pr := startPull(ctx, edge, origin, "alice")
		pr.waitLive(t)
		st := edge.reg.Stream("alice")
		cancel()
		require.ErrorIs(t, pr.wait(t), context.Canceled)
		require.True(t, st.Ended(), "no grace window for a relay")
		require.Nil(t, edge.reg.Stream("alice"))
		require.Eventually(t, func() bool { return len(edge.srv.Conns()) == 0 }, 5*time.Second, 10*time.Millisecond)
	})

	t.Run("origin dies", func(t *testing.T) {
		pr := startPull(context.Background(), edge, origin, "alice")
		pr.waitLive(t)
		st := edge.reg.Stream("alice")
		r, err := st.AddReader("test")
		require.NoError(t, err)
		defer r.Close()
		origin.srv.Close() // every connection drops, as when the node is killed
		require.Error(t, pr.wait(t))
		_, _ = readEvents(t, r, 1<<20, 5*time.Second)
		_, err = r.Read(context.Background())
		require.ErrorIs(t, err, hub.ErrStreamEnded, "viewers see the stream end")
	})

	t.Run("not live", func(t *testing.T) {
		pr := startPull(context.Background(), edge, origin, "bob")
		require.Error(t, pr.wait(t))
		require.Nil(t, edge.reg.Stream("bob"))
	})

	t.Run("edge closed", func(t *testing.T) {
		edge.srv.Close()
		pr := startPull(context.Background(), edge, origin, "alice")
		require.Error(t, pr.wait(t))
	})
}

// A play on the relay application never asks Locate (relays don't chain); other
// plays do.
func TestPlayRelayAppIsLocal(t *testing.T) {
	var asked atomic.Int32
	e := newTestEnv(t, func(_ *Server, reg *hub.Registry) {
		reg.Locate = func(context.Context, string) bool { asked.Add(1); return false }
	})
	play := func(app string) error {
		u, err := url.Parse(e.url(app, "alice"))
		require.NoError(t, err)
		c := &gortmplib.Client{URL: u}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = c.Initialize(ctx)
		if err == nil {
			c.Close()
		}
		return err
	}
	require.Error(t, play(RelayApp))
	require.Zero(t, asked.Load())
	require.Error(t, play("live"))
	require.Equal(t, int32(1), asked.Load())
}
