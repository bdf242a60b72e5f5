package source_test

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/stats"
	"github.com/onair/onair/internal/stats/source"
)

// statOf reads and parses /stat.
func statOf(t *testing.T, e *env) statDoc {
	t.Helper()
	status, body := e.get("/stat")
	require.Equal(t, http.StatusOK, status)
	var doc statDoc
	require.NoError(t, xml.Unmarshal(body, &doc))
	return doc
}

// reportOf reads /api/v1/stats.
func reportOf(t *testing.T, e *env) stats.Report {
	t.Helper()
	status, body := e.get("/api/v1/stats")
	require.Equal(t, http.StatusOK, status)
	var rep stats.Report
	require.NoError(t, json.Unmarshal(body, &rep))
	return rep
}

// A transcoded rendition (a derived stream) is no channel in /stat, /metrics and the
// stats API: its readers count with its source. An edge relaying the channel lists it
// with its pull (the publishing client, labelled) and its own players; the origin does
// not count the pull as a viewer.
func TestDerivedAndRelayedStreams(t *testing.T) {
	origin, edge := newEnv(t), newEnv(t)
	origin.publish("alice")
	origin.play("alice")

	// The rendition, as the transcoder publishes it, with one reader of kind rtmp (an
	// RTMP player of the rendition).
	rend, err := origin.hub.PublishFrom("alice~720p", origin.hub.Stream("alice").Tracks(), hub.SourceDerived)
	require.NoError(t, err)
	defer rend.Close()
	rr, err := rend.Stream().AddReader("rtmp")
	require.NoError(t, err)
	defer rr.Close()

	require.Eventually(t, func() bool {
		rep := reportOf(t, origin)
		return len(rep.Streams) == 1 && rep.Streams[0].Viewers.RTMP == 2
	}, 15*time.Second, 100*time.Millisecond, "the rendition's player counts on alice: %+v", reportOf(t, origin))
	rep := reportOf(t, origin)
	require.Equal(t, 1, rep.Server.Streams)
	require.Equal(t, "alice", rep.Streams[0].Name)
	require.False(t, rep.Streams[0].Relay)
	require.Equal(t, 2, rep.Server.Viewers.RTMP)
	doc := statOf(t, origin)
	require.Len(t, doc.Server.Application[0].Live.Streams, 1)
	require.Equal(t, "alice", doc.Server.Application[0].Live.Streams[0].Name)
	_, metrics := origin.get("/metrics")
	require.NotContains(t, string(metrics), "alice~720p")
	require.Contains(t, string(metrics), `stream="alice"`)

	// The edge pulls alice from the origin and serves one player.
	ctx, cancel := context.WithCancel(context.Background())
	pulled := make(chan error, 1)
	go func() {
		pulled <- edge.rtmp.Pull(ctx, fmt.Sprintf("127.0.0.1:%d", origin.rtmp.Port()), "alice", nil)
	}()
	defer func() {
		cancel()
		<-pulled
	}()
	require.Eventually(t, func() bool {
		st := edge.hub.Stream("alice")
		return st != nil && st.Publishing()
	}, 15*time.Second, 50*time.Millisecond)
	edge.play("alice")
	require.Eventually(t, func() bool {
		rep := reportOf(t, edge)
		return len(rep.Streams) == 1 && rep.Streams[0].Viewers.RTMP == 1
	}, 15*time.Second, 100*time.Millisecond, "the edge's player: %+v", reportOf(t, edge))
	rep = reportOf(t, edge)
	require.True(t, rep.Streams[0].Relay)
	require.Equal(t, 1, rep.Server.Connections.RTMPPublishing, "the pull")
	_, metrics = edge.get("/metrics")
	require.Contains(t, string(metrics), "\nonair_relayed_streams 1\n")
	require.Contains(t, string(metrics), "\nonair_live_streams 1\n")
	_, metrics = origin.get("/metrics")
	require.Contains(t, string(metrics), "\nonair_relayed_streams 0\n")

	doc = statOf(t, edge)
	streams := doc.Server.Application[0].Live.Streams
	require.Len(t, streams, 1)
	st := streams[0]
	require.Equal(t, "alice", st.Name)
	require.NotNil(t, st.Publishing)
	require.Equal(t, 2, st.NClients, "the pull and the player")
	var pubs, players int
	for _, c := range st.Clients {
		if c.Publishing != nil {
			pubs++
			require.Equal(t, source.RelayFlashVer, c.FlashVer)
			require.Equal(t, fmt.Sprintf("127.0.0.1:%d", origin.rtmp.Port()), c.Address, "the origin's address")
		} else {
			players++
		}
	}
	require.Equal(t, 1, pubs)
	require.Equal(t, 1, players)

	// The origin still counts its own two RTMP viewers: the pull is no viewer.
	rep = reportOf(t, origin)
	require.Len(t, rep.Streams, 1)
	require.Equal(t, 2, rep.Streams[0].Viewers.RTMP)
}
