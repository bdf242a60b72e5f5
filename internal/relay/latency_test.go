package relay_test

import (
	"hash/fnv"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/relay"
)

// BenchmarkRelayLatency measures what the relay adds to a viewer's latency: ffmpeg
// publishes to node A in real time, one RTMP player plays on A and one on B (which
// relays from A), and for every video access unit both receive, the benchmark takes
// B's arrival time minus A's. Run with -bench RelayLatency -benchtime 1x.
func BenchmarkRelayLatency(b *testing.B) {
	for _, merge := range []time.Duration{0, 100 * time.Millisecond} {
		b.Run("write_merge="+merge.String(), func(b *testing.B) {
			for range b.N {
				mean, p50, p95, n := measureRelayLatency(b, merge)
				b.ReportMetric(mean, "mean-ms")
				b.ReportMetric(p50, "p50-ms")
				b.ReportMetric(p95, "p95-ms")
				b.ReportMetric(float64(n), "units")
			}
		})
	}
}

func measureRelayLatency(b *testing.B, merge time.Duration) (mean, p50, p95 float64, n int) {
	loc := &locator{origins: map[string]relay.Origin{}}
	a := newNode(b, "a", nodeOpts{writeMerge: merge})
	bn := newNode(b, "b", nodeOpts{locator: loc, writeMerge: merge})
	loc.set("alice", a.origin())
	a.publish(b)

	pa := playRTMP(b, a.rtmpURL("live", "alice"))
	pb := playRTMP(b, bn.rtmpURL("live", "alice"))
	// Skip the GOP bursts that start each player: measure from 2 s on, for 6 s.
	from := time.Now().Add(2 * time.Second)
	until := from.Add(6 * time.Second)
	var wg sync.WaitGroup
	arrivals := make([]map[uint64]time.Time, 2)
	for i, c := range []*gortmplib.Client{pa, pb} {
		arrivals[i] = make(map[uint64]time.Time)
		wg.Add(1)
		go func() {
			defer wg.Done()
			readArrivals(c, until, arrivals[i])
		}()
	}
	wg.Wait()
	var deltas []float64
	for h, ta := range arrivals[0] {
		if tb, ok := arrivals[1][h]; ok && ta.After(from) {
			deltas = append(deltas, float64(tb.Sub(ta))/float64(time.Millisecond))
		}
	}
	require.NotEmpty(b, deltas, "no access unit reached both players")
	slices.Sort(deltas)
	for _, d := range deltas {
		mean += d
	}
	return mean / float64(len(deltas)), deltas[len(deltas)/2], deltas[len(deltas)*95/100], len(deltas)
}

// readArrivals records when each video access unit (by a hash of its bytes) arrives,
// until the deadline.
func readArrivals(c *gortmplib.Client, until time.Time, out map[uint64]time.Time) {
	_ = c.NetConn().SetReadDeadline(until)
	for {
		msg, err := c.Read()
		if err != nil {
			return
		}
		now := time.Now()
		if v, ok := msg.(*message.Video); ok && v.Type == message.VideoTypeAU {
			h := fnv.New64a()
			h.Write(v.AU)
			if _, seen := out[h.Sum64()]; !seen {
				out[h.Sum64()] = now
			}
		}
	}
}
