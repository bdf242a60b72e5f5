package rtmp

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/onair"
)

func TestServerConnsAndStats(t *testing.T) {
	e := newTestEnv(t)
	file := media(t, "h264_aac.flv")
	e.publishFile(file, "live", keyOf("alice"), true)
	st := e.waitLive("alice")
	c := e.dialPlayer("alice")
	firstVideoAU(t, c)

	var pub, play ConnInfo
	require.Eventually(t, func() bool {
		pub, play = ConnInfo{}, ConnInfo{}
		for _, ci := range e.srv.Conns() {
			switch ci.State {
			case ConnPublishing:
				pub = ci
			case ConnPlaying:
				play = ci
			}
		}
		return pub.Active && play.Active && pub.Timestamp > 500*time.Millisecond && play.Timestamp > 0
	}, 10*time.Second, 20*time.Millisecond)

	require.Equal(t, "alice", pub.Channel)
	require.Equal(t, "alice", play.Channel)
	require.Contains(t, pub.FlashVer, "FMLE")
	require.Equal(t, "LNX 9,0,124,2", play.FlashVer, "gortmplib's client")
	require.Greater(t, pub.BytesIn, uint64(10_000))
	require.Greater(t, play.BytesOut, uint64(10_000))
	require.Less(t, pub.ID, play.ID)
	require.False(t, pub.Start.IsZero())
	require.Less(t, abs(pub.AVSync), time.Second)
	require.Zero(t, play.Dropped)

	ss := e.srv.Stats()
	require.Equal(t, uint64(2), ss.Accepted)
	require.GreaterOrEqual(t, ss.BytesIn, pub.BytesIn)
	require.GreaterOrEqual(t, ss.BytesOut, play.BytesOut)
	require.Greater(t, st.Info().BytesOut, uint64(0), "player bytes reach the hub stream")
	for _, ci := range e.srv.Conns() {
		require.NotContains(t, ci.Channel, "sk_")
	}
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func TestSetFlashVer(t *testing.T) {
	cases := []struct{ in, want string }{
		{"FMLE/3.0 (compatible; obs)", "FMLE/3.0 (compatible; obs)"},
		{"a\x00b\nc\u00e9", "a b c  "},
		{strings.Repeat("x", 100), strings.Repeat("x", maxFlashVerLen)},
		{"", ""},
	}
	for _, ca := range cases {
		t.Run(ca.in, func(t *testing.T) {
			var cs connStats
			cs.setFlashVer(ca.in)
			require.Equal(t, ca.want, cs.flashVer)
		})
	}
}

func TestServerAuthorizePublish(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	e := newTestEnv(t, func(s *Server, _ *hub.Registry) {
		s.AuthorizePublish = func(ctx context.Context, channel, addr string) error {
			_, hasDeadline := ctx.Deadline()
			require.True(t, hasDeadline)
			mu.Lock()
			calls = append(calls, channel+"@"+addr)
			mu.Unlock()
			if channel == "bob" {
				return onair.Errorf(onair.EFORBIDDEN, "Refused by policy.")
			}
			return nil
		}
	})
	_, err := publishClient(e, keyOf("alice"))
	require.NoError(t, err)
	_, err = publishClient(e, keyOf("bob"))
	require.Error(t, err, "refused before NetStream.Publish.Start")
	_, err = publishClient(e, "sk_wrong_0123456789")
	require.Error(t, err)

	mu.Lock()
	require.Equal(t, []string{"alice@127.0.0.1", "bob@127.0.0.1"}, calls, "wrong keys never reach the callback")
	mu.Unlock()
	require.Len(t, e.log.lines("publish rejected", "publish denied: Refused by policy.", "channel=bob"), 1)
	e.requireNoKeyInLogs()
}

// FuzzSetFlashVer feeds connect-command flashVer strings (client input) to the sanitizer.
func FuzzSetFlashVer(f *testing.F) {
	f.Add("FMLE/3.0 (compatible; Lavf59.27.100)")
	f.Add("LNX 9,0,124,2")
	f.Add("\x00\xff<>&\"'")
	f.Fuzz(func(t *testing.T, in string) {
		var cs connStats
		cs.setFlashVer(in)
		if len(cs.flashVer) > maxFlashVerLen {
			t.Fatalf("flashVer of %d bytes", len(cs.flashVer))
		}
		for i := 0; i < len(cs.flashVer); i++ {
			if c := cs.flashVer[i]; c < 0x20 || c >= 0x7f {
				t.Fatalf("byte %#x kept", c)
			}
		}
	})
}
