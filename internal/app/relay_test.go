package app

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/relay"
	"github.com/onair/onair/internal/testutil"
)

// originOf places every channel on one node.
type originOf relay.Origin

func (o originOf) Locate(context.Context, string) (relay.Origin, bool, error) {
	return relay.Origin(o), o.Node != "", nil
}

// Two servers: B relays A's channel to its RTMP and HLS viewers, without going live
// itself (no live event, no recording), and stops pulling when they leave.
func TestRelayBetweenServers(t *testing.T) {
	testutil.RequireFFmpeg(t)
	a := mustStartServer(t, nil)
	b := mustStartServer(t, nil)
	_, err := b.startRelay(originOf{Node: "a", RTMPAddr: a.RTMPAddr().String()}, "b")
	require.NoError(t, err)
	key := mustCreateUser(t, a, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	publish(t, ctx, a.rtmpURL("/live/"+key), defaultPublish)
	waitLive(t, a, "alice")

	require.ElementsMatch(t, []string{"video:h264", "audio:aac"}, codecs(ffprobe(t, b.rtmpURL("/live/alice"))))
	st := b.Hub().Stream("alice")
	require.NotNil(t, st)
	require.Equal(t, hub.SourceRelay, st.Source())
	require.ElementsMatch(t, []string{"video:h264", "audio:aac"}, codecs(ffprobe(t, b.httpURL("/hls/alice/index.m3u8"))))
	code, _, _ := getBody(t, b.httpURL("/dash/alice/index.mpd"))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, b.log.String(), "relay started")
	require.NotContains(t, b.log.String(), "mark channel live", "no live event on the edge")
	_, recording := b.recorder.Active("alice")
	require.False(t, recording, "no recording on the edge")
	require.NotContains(t, b.log.String(), key)
	require.NotContains(t, a.log.String(), key)

	// The origin's stream ends: B's stream ends at once.
	cancel()
	require.Eventually(t, func() bool { return b.Hub().Stream("alice") == nil }, 15*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool { return len(b.relay.Pulls()) == 0 }, 5*time.Second, 50*time.Millisecond)
}
