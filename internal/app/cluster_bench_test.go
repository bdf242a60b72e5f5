package app

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/testutil"
)

// BenchmarkClusterOriginCPU measures the origin node's CPU (three onair processes on
// PostgreSQL and NATS) while it takes a 720p30 ~2.5 Mbit/s stream: alone, with two RTMP
// players of its own, and with two edges pulling the stream (one RTMP player on each).
// Reported as % of one core; run with -benchtime=1x:
//
//	go test -run '^$' -bench ClusterOriginCPU -benchtime=1x ./internal/app/
func BenchmarkClusterOriginCPU(b *testing.B) {
	testutil.RequireFFmpeg(b)
	bin := buildOnair(b)
	c := newTestCluster(b, bin, testutil.NewPostgresDSN(b))
	key := c.createUser("alice")
	a, e1, e2 := c.start("a"), c.start("b"), c.start("c")

	// A clip encoded once, published by copy in a loop, so the encoder costs nothing.
	clip := filepath.Join(b.TempDir(), "clip.flv")
	args := append([]string{"-hide_banner", "-loglevel", "error"}, testutil.LavfiInput(true, true, "1280x720", 30, 44100)...)
	args = append(args, "-t", "10", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "2400k", "-maxrate", "2400k",
		"-bufsize", "4800k", "-g", "60", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k", clip)
	enc := testutil.Start(b, context.Background(), "ffmpeg", args...)
	exited, err := enc.Wait(5 * time.Minute)
	require.True(b, exited)
	require.NoError(b, err, enc.Output())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testutil.Start(b, ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", clip,
		"-c", "copy", "-f", "flv", a.rtmpURL("/live/"+key))
	require.Eventually(b, func() bool { live, _, err := channelLive(a, "alice"); return err == nil && live },
		20*time.Second, 100*time.Millisecond)
	play := func(ctx context.Context, n *clusterNodeProc) {
		testutil.Start(b, ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-i", n.rtmpURL("/live/alice"),
			"-c", "copy", "-f", "null", "-")
	}
	window := 10 * time.Second
	time.Sleep(3 * time.Second)
	b.ResetTimer()
	alone := cpuPercent(b, a.proc.Pid(), window)

	pctx, pcancel := context.WithCancel(ctx)
	play(pctx, a)
	play(pctx, a)
	time.Sleep(2 * time.Second)
	players := cpuPercent(b, a.proc.Pid(), window)
	pcancel()

	play(ctx, e1)
	play(ctx, e2)
	require.Eventually(b, func() bool { _, v, err := channelLive(a, "alice"); return err == nil && v == 2 },
		20*time.Second, 100*time.Millisecond)
	time.Sleep(2 * time.Second)
	edges := cpuPercent(b, a.proc.Pid(), window)
	edgeCPU := cpuPercent(b, e1.proc.Pid(), window)

	b.ReportMetric(alone, "origin_alone_%cpu")
	b.ReportMetric(players, "origin_2players_%cpu")
	b.ReportMetric(edges, "origin_2edges_%cpu")
	b.ReportMetric(edgeCPU, "edge_1player_%cpu")
}
