package cluster_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/cluster"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/testutil"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// node is one test node: a directory whose local streams are a set the test edits.
type node struct {
	dir     *cluster.Directory
	mu      sync.Mutex
	live    map[string]int // channel → local viewers, published here
	relayed map[string]int // channel → local viewers, relayed
	orphans []string
	lost    []string
}

func (n *node) report() cluster.Report {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := cluster.Report{Viewers: map[string]int{}}
	for ch, v := range n.live {
		r.Streams = append(r.Streams, onair.LiveStream{Channel: ch, Publishing: true, Viewers: v})
		r.Viewers[ch] = v
	}
	for ch, v := range n.relayed {
		r.Viewers[ch] = v
	}
	return r
}

func (n *node) setLive(ch string, viewers int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.live[ch] = viewers
}

func (n *node) orphaned() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.orphans...)
}

type testCluster struct {
	t      *testing.T
	url    string
	bucket string
}

func newTestCluster(t *testing.T) *testCluster {
	url, unique := testutil.NATSURL(t)
	tc := &testCluster{t: t, url: url, bucket: unique}
	t.Cleanup(func() {
		nc, err := nats.Connect(url)
		if err != nil {
			return
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		_ = js.DeleteKeyValue(context.Background(), tc.bucket)
	})
	return tc
}

func (tc *testCluster) start(name string) *node {
	t := tc.t
	nc, err := nats.Connect(tc.url, nats.NoEcho(), nats.ReconnectWait(100*time.Millisecond), nats.MaxReconnects(-1))
	require.NoError(t, err)
	n := &node{live: map[string]int{}, relayed: map[string]int{}}
	n.dir = &cluster.Directory{
		Conn:              nc,
		Self:              cluster.Origin{Node: name, RTMPAddr: name + ":1935", HTTPAddr: name + ":8080"},
		Bucket:            tc.bucket,
		SubjectPrefix:     "test." + tc.bucket,
		HeartbeatInterval: 100 * time.Millisecond,
		DeadAfter:         500 * time.Millisecond,
		ClaimGrace:        time.Second,
		SweepInterval:     300 * time.Millisecond,
		Report:            n.report,
		Owns: func(ch string) bool {
			n.mu.Lock()
			defer n.mu.Unlock()
			_, ok := n.live[ch]
			return ok
		},
		OnOrphan: func(_ context.Context, ch string, o cluster.Origin) {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.orphans = append(n.orphans, ch+"@"+o.Node)
		},
		OnLost: func(ch string, _ cluster.Origin) {
			n.mu.Lock()
			defer n.mu.Unlock()
			n.lost = append(n.lost, ch)
			delete(n.live, ch)
		},
	}
	require.NoError(t, n.dir.Start(context.Background()))
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { n.dir.Close(); nc.Close() }) })
	return n
}

func (n *node) kill() {
	n.dir.Close()
	n.dir.Conn.Close()
}

func TestClaimIsExclusive(t *testing.T) {
	tc := newTestCluster(t)
	a, b := tc.start("a"), tc.start("b")
	ctx := context.Background()

	_, ok, err := b.dir.Locate(ctx, "alice")
	require.NoError(t, err)
	require.False(t, ok)

	require.NoError(t, a.dir.Claim(ctx, "alice"))
	require.NoError(t, a.dir.Claim(ctx, "alice"), "a reconnect to the same node keeps its claim")
	a.setLive("alice", 0)
	err = b.dir.Claim(ctx, "alice")
	require.ErrorIs(t, err, cluster.ErrClaimed)
	require.Equal(t, onair.ECONFLICT, onair.ErrorCode(err))

	o, ok, err := b.dir.Locate(ctx, "alice")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "a", o.Node)
	require.Equal(t, "a:1935", o.RTMPAddr)
	require.Equal(t, "a:8080", o.HTTPAddr)

	require.NoError(t, b.dir.Release(ctx, "alice"), "releasing another node's claim does nothing")
	_, ok, _ = b.dir.Locate(ctx, "alice")
	require.True(t, ok)

	require.NoError(t, a.dir.Release(ctx, "alice"))
	require.NoError(t, b.dir.Claim(ctx, "alice"))
	o, ok, _ = a.dir.Locate(ctx, "alice")
	require.True(t, ok)
	require.Equal(t, "b", o.Node)
}

// TestClaimRace has many nodes claim one channel at once: exactly one wins.
func TestClaimRace(t *testing.T) {
	tc := newTestCluster(t)
	nodes := []*node{tc.start("n1"), tc.start("n2"), tc.start("n3"), tc.start("n4")}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			if err := n.dir.Claim(context.Background(), "bob"); err == nil {
				wins.Add(1)
			} else {
				require.ErrorIs(t, err, cluster.ErrClaimed)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), wins.Load())
}

func TestDirectorySumsViewersAcrossNodes(t *testing.T) {
	tc := newTestCluster(t)
	a, b := tc.start("a"), tc.start("b")
	require.NoError(t, a.dir.Claim(context.Background(), "alice"))
	a.setLive("alice", 3)
	b.mu.Lock()
	b.relayed["alice"] = 4
	b.mu.Unlock()

	for _, n := range []*node{a, b} {
		require.Eventually(t, func() bool {
			ls, ok := n.dir.LiveStream("alice")
			return ok && ls.Viewers == 7 && ls.Publishing
		}, 5*time.Second, 20*time.Millisecond)
		require.Len(t, n.dir.LiveStreams(), 1)
	}
	require.Eventually(t, func() bool { return len(a.dir.Nodes()) == 2 }, 5*time.Second, 20*time.Millisecond)
}

// TestDeadNodeGoesOffline: a node that stops heart-beating loses its streams within
// seconds, and exactly one survivor reports each one offline.
func TestDeadNodeGoesOffline(t *testing.T) {
	tc := newTestCluster(t)
	a, b, c := tc.start("a"), tc.start("b"), tc.start("c")
	ctx := context.Background()
	require.NoError(t, a.dir.Claim(ctx, "alice"))
	a.setLive("alice", 1)
	require.Eventually(t, func() bool { _, ok := c.dir.LiveStream("alice"); return ok }, 5*time.Second, 20*time.Millisecond)

	a.kill()
	start := time.Now()
	require.Eventually(t, func() bool {
		_, okB := b.dir.LiveStream("alice")
		_, okC := c.dir.LiveStream("alice")
		_, located, _ := c.dir.Locate(ctx, "alice")
		return !okB && !okC && !located && len(b.orphaned())+len(c.orphaned()) == 1
	}, 10*time.Second, 20*time.Millisecond)
	t.Logf("offline everywhere %v after the origin died", time.Since(start).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, []string{"alice@a"}, append(b.orphaned(), c.orphaned()...), "reported once")

	require.NoError(t, b.dir.Claim(ctx, "alice"), "the channel can go live elsewhere")
}

// TestTakeOverDeadClaim: a claim whose node is dead is taken over by Claim at once,
// without waiting for the sweep.
func TestTakeOverDeadClaim(t *testing.T) {
	tc := newTestCluster(t)
	a := tc.start("a")
	require.NoError(t, a.dir.Claim(context.Background(), "carol"))
	a.setLive("carol", 0)
	a.kill()
	time.Sleep(600 * time.Millisecond) // b's DeadAfter since its start
	b := tc.start("b")
	require.ErrorIs(t, b.dir.Claim(context.Background(), "carol"), cluster.ErrClaimed, "b has not listened long enough")
	time.Sleep(600 * time.Millisecond)
	require.NoError(t, b.dir.Claim(context.Background(), "carol"))
	require.Equal(t, []string{"carol@a"}, b.orphaned())
}

// TestStaleOwnClaimsAreReleased: a claim of this node whose stream never went live (or
// that is left from before a restart) is released by the sweep.
func TestStaleOwnClaimsAreReleased(t *testing.T) {
	tc := newTestCluster(t)
	a := tc.start("a")
	b := tc.start("b")
	require.NoError(t, a.dir.Claim(context.Background(), "dave"))
	// Not live on a (Owns is false): after ClaimGrace plus a sweep it goes.
	require.Eventually(t, func() bool {
		_, ok, _ := b.dir.Locate(context.Background(), "dave")
		return !ok
	}, 10*time.Second, 50*time.Millisecond)
	// The claim is gone first, then the orphan callback runs.
	require.Eventually(t, func() bool {
		o := a.orphaned()
		return len(o) == 1 && o[0] == "dave@a"
	}, 5*time.Second, 20*time.Millisecond, "orphaned: %v", a.orphaned())
}

// TestLostClaimIsRestoredOrGivenUp: after a partition, a node whose claim was removed
// claims it again, or ends its stream when another node holds the channel.
func TestLostClaimIsRestoredOrGivenUp(t *testing.T) {
	tc := newTestCluster(t)
	a, b := tc.start("a"), tc.start("b")
	ctx := context.Background()
	for _, ch := range []string{"erin", "frank"} {
		require.NoError(t, a.dir.Claim(ctx, ch))
		a.setLive(ch, 0)
	}
	// Simulate the others having removed a's claims, and b taking frank.
	nc, err := nats.Connect(tc.url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	kv, err := js.KeyValue(ctx, tc.bucket)
	require.NoError(t, err)
	require.NoError(t, kv.Delete(ctx, "erin"))
	require.NoError(t, kv.Delete(ctx, "frank"))
	require.NoError(t, b.dir.Claim(ctx, "frank"))
	b.setLive("frank", 0)

	require.Eventually(t, func() bool {
		o, ok, _ := b.dir.Locate(ctx, "erin")
		a.mu.Lock()
		defer a.mu.Unlock()
		return ok && o.Node == "a" && len(a.lost) == 1 && a.lost[0] == "frank"
	}, 10*time.Second, 50*time.Millisecond)
}

// TestNATSOutageKillsNobody restarts the NATS server under two nodes: when it is back,
// neither takes the other for dead (both were cut off, not the other node).
func TestNATSOutageKillsNobody(t *testing.T) {
	srv := testutil.StartNATSServer(t, "-js", "-sd", t.TempDir())
	tc := &testCluster{t: t, url: srv.URL, bucket: "outage"}
	a, b := tc.start("a"), tc.start("b")
	ctx := context.Background()
	require.NoError(t, a.dir.Claim(ctx, "alice"))
	a.setLive("alice", 0)
	require.Eventually(t, func() bool { _, ok := b.dir.LiveStream("alice"); return ok }, 5*time.Second, 20*time.Millisecond)

	srv.Stop()
	time.Sleep(1500 * time.Millisecond) // three times DeadAfter without any heartbeat
	srv.Start()
	require.Eventually(t, func() bool { return a.dir.Conn.IsConnected() && b.dir.Conn.IsConnected() }, 15*time.Second, 20*time.Millisecond)
	time.Sleep(1500 * time.Millisecond) // past DeadAfter since the reconnect, with sweeps
	require.Empty(t, a.orphaned())
	require.Empty(t, b.orphaned())
	o, ok, err := b.dir.Locate(ctx, "alice")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "a", o.Node)
	_, ok = b.dir.LiveStream("alice")
	require.True(t, ok)
}
