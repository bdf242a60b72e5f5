package record

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/record/recordtest"
)

// costEnv enables TestRecordingCost, which takes about two minutes of real time.
const costEnv = "ONAIR_BENCH_RECORD"

// cpuTime returns the user and system CPU time of the process.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writtenBytes returns the bytes the process passed to write calls (/proc/self/io wchar).
func writtenBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "wchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err)
			return n
		}
	}
	return -1
}

// TestRecordingCost measures what recording one 720p30 3 Mbit/s stream costs: the CPU
// of the process publishing it in real time through a hub and its CMAF segmenter, with
// and without the recorder, and the bytes written. It also times the writer alone on the
// same segments, as fast as the disk takes them.
func TestRecordingCost(t *testing.T) {
	if os.Getenv(costEnv) != "1" {
		t.Skipf("set %s=1 to measure the cost of recording", costEnv)
	}
	const seconds = 30
	m := recordtest.MustMedia(t, recordtest.Options{Seconds: seconds, Size: "1280x720", FPS: 30, GOP: 60, VideoBitrate: "3M"})
	t.Logf("media: %d s, %.2f Mbit/s", seconds, float64(m.Bytes)*8/m.Length.Seconds()/1e6)

	run := func(record bool) (cpu, wall time.Duration, written int64) {
		e := mustEnv(t, envOptions{noStart: true})
		mustChannel(t, e.db, "alice", "", record)
		require.NoError(t, e.rec.Start())
		p, err := e.hub.Publish("alice", m.Tracks)
		require.NoError(t, err)
		// Keep the segmenter busy in both runs, as the LL-HLS and DASH viewers would.
		s, err := e.cmaf.Stream("alice")
		require.NoError(t, err)
		sub := s.Subscribe(64)
		defer sub.Close()
		cpu0, w0, start := cpuTime(t), writtenBytes(t), time.Now()
		require.NoError(t, recordtest.Publish(context.Background(), p, m, 1))
		p.Close()
		require.True(t, e.hub.End("alice"))
		if record {
			rec := e.waitRecording(t, "alice")
			t.Logf("recording: %d segments, %.0f kB/s of media", rec.Segments, float64(rec.Bytes)/rec.Duration.Seconds()/1e3)
		} else {
			time.Sleep(time.Second) // what the recorder's end takes, for a fair comparison
		}
		return cpuTime(t) - cpu0, time.Since(start), writtenBytes(t) - w0
	}

	for i := range 2 {
		baseCPU, baseWall, baseW := run(false)
		recCPU, recWall, recW := run(true)
		base := baseCPU.Seconds() / baseWall.Seconds() * 100
		with := recCPU.Seconds() / recWall.Seconds() * 100
		t.Logf("run %d: hub+cmaf %.2f %% of a core, with the recorder %.2f %%: recorder %.2f %% of a core; "+
			"written %.0f kB/s (without %.0f kB/s)", i+1, base, with, with-base,
			float64(recW)/recWall.Seconds()/1e3, float64(baseW)/baseWall.Seconds()/1e3)
	}

	// The writer alone: the same number of 2 s segments of 3 Mbit/s, with fsync and a
	// playlist rewrite each, as fast as possible.
	seg := bytes.Repeat([]byte{0x55}, 3_000_000/8*2)
	var segs [][]byte
	for range seconds / 2 {
		segs = append(segs, seg)
	}
	st := &LocalStorage{Dir: t.TempDir()}
	w := newWriter(st, 1)
	cpu0, start := cpuTime(t), time.Now()
	for i, b := range segs {
		e := segmentEntry{Start: time.Duration(i) * 2 * time.Second, Duration: 2 * time.Second, Size: int64(len(b))}
		require.NoError(t, w.writeSegment(t.Context(), e, chunkReader([][]byte{b})))
	}
	require.NoError(t, w.finish(t.Context()))
	cpu := cpuTime(t) - cpu0
	t.Logf("writer alone: %d s of media in %s wall, %s CPU: %.2f %% of a core at real time",
		seconds, time.Since(start).Round(time.Millisecond), cpu.Round(time.Millisecond), cpu.Seconds()/seconds*100)
}
