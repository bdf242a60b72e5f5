package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/stats/source"
	"github.com/onair/onair/internal/testutil"
)

// clusterNodeProc is one onair process of a test cluster.
type clusterNodeProc struct {
	name      string
	dir       string
	rtmp, web string // host:port
	proc      *testutil.Process
}

func (n *clusterNodeProc) httpURL(path string) string { return "http://" + n.web + path }
func (n *clusterNodeProc) rtmpURL(path string) string { return "rtmp://" + n.rtmp + path }

// testCluster runs onair nodes (the real binary) sharing a database and NATS.
type testCluster struct {
	t       testing.TB
	bin     string
	dsn     string
	natsURL string
	name    string // the cluster name: subjects and bucket of this test only
	nodes   map[string]*clusterNodeProc
	config  string // a config file every node reads (webhooks)
	setup   string // the data directory of the CLI: the secret key every node copies
	hooks   *hookRecorder
}

// hookRecorder counts the webhook deliveries of the whole cluster.
type hookRecorder struct {
	mu     sync.Mutex
	events []string // "type channel [text]"
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev struct {
		Type    string `json:"type"`
		Channel string `json:"channel"`
		Data    struct {
			Text string `json:"text"`
		} `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&ev); err == nil {
		h.mu.Lock()
		h.events = append(h.events, strings.TrimSpace(ev.Type+" "+ev.Channel+" "+ev.Data.Text))
		h.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookRecorder) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.events, "; ")
}

func (h *hookRecorder) count(event string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, e := range h.events {
		if e == event {
			n++
		}
	}
	return n
}

// buildOnair builds the onair binary once for the test.
func buildOnair(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "onair")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/onair/onair/cmd/onair")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// cli runs an onair command against the cluster's database and returns its stdout.
func (c *testCluster) cli(dir, stdin string, args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.bin, append(args, "--data", dir, "--db", c.dsn)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(c.t, err, "onair %s: %s", strings.Join(args, " "), stderr.String())
	return string(out)
}

// createUser creates a user with the CLI and returns the stream key.
func (c *testCluster) createUser(name string) string {
	c.t.Helper()
	out := c.cli(c.setup, "correct horse battery\n", "user", "create", name, "--password-stdin")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

// start starts a node. Nodes share the CLI's secret key (stream keys are encrypted with
// it), as a deployment does.
func (c *testCluster) start(name string) *clusterNodeProc {
	c.t.Helper()
	n := &clusterNodeProc{name: name, dir: filepath.Join(c.t.TempDir(), name), rtmp: freeAddr(c.t), web: freeAddr(c.t)}
	require.NoError(c.t, os.MkdirAll(n.dir, 0o750))
	key, err := os.ReadFile(filepath.Join(c.setup, "secret.key"))
	require.NoError(c.t, err, "create a user first")
	require.NoError(c.t, os.WriteFile(filepath.Join(n.dir, "secret.key"), key, 0o600))
	n.proc = testutil.StartEnv(c.t, context.Background(), []string{"ONAIR_CLUSTER=" + c.name, "ONAIR_GRACE_PERIOD=2s"}, c.bin, "serve",
		"--config", c.config, "--data", n.dir, "--db", c.dsn, "--nats", c.natsURL, "--node", name,
		"--rtmp-addr", n.rtmp, "--http-addr", n.web, "--advertise-rtmp", n.rtmp, "--advertise-http", n.web)
	c.nodes[name] = n
	require.Eventually(c.t, func() bool {
		res, err := http.Get(n.httpURL("/healthz"))
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, 20*time.Second, 100*time.Millisecond, "node %s did not start: %s", name, n.proc.Output())
	return n
}

func newTestCluster(t testing.TB, bin, dsn string) *testCluster {
	natsURL, unique := testutil.NATSURL(t)
	c := &testCluster{t: t, bin: bin, dsn: dsn, natsURL: natsURL, name: strings.ReplaceAll(unique, "_", "-"), nodes: map[string]*clusterNodeProc{}}
	c.hooks = &hookRecorder{}
	hooks := httptest.NewServer(c.hooks)
	t.Cleanup(hooks.Close)
	c.setup = filepath.Join(t.TempDir(), "setup")
	c.config = filepath.Join(t.TempDir(), "onair.toml")
	require.NoError(t, os.WriteFile(c.config, []byte("[[webhooks]]\nurl = \""+hooks.URL+"\"\nsecret = \"s3cret\"\n"), 0o600))
	t.Cleanup(func() {
		nc, err := nats.Connect(natsURL)
		if err != nil {
			return
		}
		defer nc.Close()
		if js, err := jetstream.New(nc); err == nil {
			_ = js.DeleteKeyValue(context.Background(), c.name+"_streams")
		}
	})
	return c
}

// channelLive reads a channel's live state from a node's API.
func channelLive(n *clusterNodeProc, name string) (bool, int, error) {
	var ch struct {
		Live    bool `json:"live"`
		Viewers int  `json:"viewers"`
	}
	if err := getJSON(n.httpURL("/api/v1/channels/"+name), &ch); err != nil {
		return false, 0, err
	}
	return ch.Live, ch.Viewers, nil
}

func streamsOf(n *clusterNodeProc) []string {
	var list []onair.LiveStream
	if getJSON(n.httpURL("/api/v1/streams"), &list) != nil {
		return nil
	}
	var out []string
	for _, ls := range list {
		out = append(out, ls.Channel)
	}
	return out
}

func loginOn(t *testing.T, n *clusterNodeProc, user string) *apiClient {
	t.Helper()
	return mustLoginAt(t, n.httpURL(""), user)
}

// cpuPercent measures a process's CPU use (user + system) over d, in % of one core.
func cpuPercent(t testing.TB, pid int, d time.Duration) float64 {
	t.Helper()
	ticks := func() float64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		require.NoError(t, err)
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		u, err := strconv.ParseFloat(f[11], 64) // utime: field 14 of the whole line
		require.NoError(t, err)
		s, err := strconv.ParseFloat(f[12], 64)
		require.NoError(t, err)
		return u + s
	}
	start, t0 := ticks(), time.Now()
	time.Sleep(d)
	return (ticks() - start) / 100 / time.Since(t0).Seconds() * 100 // USER_HZ is 100 on Linux
}

// dialChat opens a chat WebSocket on a node, signed in when c is not nil.
func dialChat(t *testing.T, n *clusterNodeProc, c *apiClient, channel string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{}
	if c != nil {
		opts.HTTPClient = c.http
	}
	ws, _, err := websocket.Dial(ctx, "ws://"+n.web+"/api/v1/channels/"+channel+"/chat", opts)
	require.NoError(t, err)
	t.Cleanup(func() { ws.CloseNow() }) //nolint:errcheck // cleanup
	return ws
}

// waitChatText reads frames until a message with text arrives.
func waitChatText(t *testing.T, ws *websocket.Conn, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, data, err := ws.Read(ctx)
		require.NoError(t, err, "waiting for chat message %q", text)
		var f struct {
			Type, User, Text string
		}
		require.NoError(t, json.Unmarshal(data, &f))
		if f.Type == "message" && f.Text == text {
			return
		}
	}
}

// TestCluster runs three nodes on one database and NATS: chat and notifications cross
// nodes, a key is live on one node only, and a killed origin's channel goes offline on
// the survivors within seconds. It runs on PostgreSQL and on MariaDB/MySQL.
func TestCluster(t *testing.T) {
	testutil.RequireFFmpeg(t)
	testutil.NATSURL(t)
	bin := buildOnair(t)
	for _, db := range []struct {
		name string
		dsn  func(testing.TB) string
	}{
		{"postgres", testutil.NewPostgresDSN},
		{"mysql", testutil.NewMySQLDSN},
	} {
		t.Run(db.name, func(t *testing.T) { testCluster3(t, bin, db.dsn(t)) })
	}
}

func testCluster3(t *testing.T, bin, dsn string) {
	c := newTestCluster(t, bin, dsn)
	key := c.createUser("alice")
	c.createUser("bob")
	a, b, cc := c.start("a"), c.start("b"), c.start("c")

	// 2. A chat message sent on B appears on C (and on B).
	bobB := loginOn(t, b, "bob")
	onC := dialChat(t, cc, nil, "alice")
	onB := dialChat(t, b, bobB, "alice")
	time.Sleep(300 * time.Millisecond) // let the rooms subscribe on NATS
	msg, err := json.Marshal(map[string]string{"type": "message", "text": "hello from b"})
	require.NoError(t, err)
	require.NoError(t, onB.Write(context.Background(), websocket.MessageText, msg))
	waitChatText(t, onC, "hello from b")
	waitChatText(t, onB, "hello from b")

	// 3. A follower signed in on C gets the go-live notification of a stream on A, and
	// every node shows the channel live.
	bobC := loginOn(t, cc, "bob")
	bobC.call("PUT", "/api/v1/channels/alice/follow", nil, http.StatusOK, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub := publish(t, ctx, a.rtmpURL("/live/"+key), defaultPublish)
	for _, n := range []*clusterNodeProc{a, b, cc} {
		require.Eventually(t, func() bool {
			live, _, err := channelLive(n, "alice")
			return err == nil && live && strings.Contains(strings.Join(streamsOf(n), ","), "alice")
		}, 20*time.Second, 100*time.Millisecond, "alice live on %s; publisher: %s", n.name, pub.Output())
	}
	// C's pages say so from the directory while C relays nothing yet (its /stat lists no
	// stream): the channel page (whose player then makes C pull) and the home page's card.
	_, page, _ := getBody(t, cc.httpURL("/@alice"))
	require.Contains(t, page, `data-live="true"`)
	_, home, _ := getBody(t, cc.httpURL("/"))
	require.Contains(t, home, `<li class="card stream-card" data-channel="alice">`)
	_, stat, _ := getBody(t, cc.httpURL("/stat"))
	require.NotContains(t, stat, "<stream>", "c relays nothing yet")
	require.Eventually(t, func() bool {
		var resp struct {
			Notifications []onair.Notification `json:"notifications"`
		}
		req, _ := http.NewRequest("GET", cc.httpURL("/api/v1/me/notifications"), nil)
		res, err := bobC.http.Do(req)
		if err != nil {
			return false
		}
		defer res.Body.Close()
		if json.NewDecoder(res.Body).Decode(&resp) != nil {
			return false
		}
		for _, n := range resp.Notifications {
			if n.Kind == "live" && n.Channel == "alice" {
				return true
			}
		}
		return false
	}, 10*time.Second, 200*time.Millisecond, "bob's notifications on c")

	// A second publish of the key, on another node, is refused by the cluster claim (B
	// relays nothing yet); the first goes on.
	second := publish(t, ctx, b.rtmpURL("/live/"+key), defaultPublish)
	exited, _ := second.Wait(15 * time.Second)
	require.True(t, exited, "the second publisher was refused")
	require.False(t, pub.Exited(), "the first publisher goes on: %s", pub.Output())
	require.Contains(t, b.proc.Output(), "live on another node")

	// 1. B and C serve the stream published on A (they relay it), over RTMP and HLS.
	av := []string{"video:h264", "audio:aac"}
	for _, n := range []*clusterNodeProc{b, cc} {
		require.ElementsMatch(t, av, codecs(ffprobe(t, n.rtmpURL("/live/alice"))), "rtmp from %s", n.name)
		require.ElementsMatch(t, av, codecs(ffprobe(t, n.httpURL("/hls/alice/index.m3u8"))), "hls from %s", n.name)
	}
	// Viewer counts are cluster-wide: a player on B and one on C count on A too. The
	// origin's CPU is measured before and while both edges pull.
	idle := cpuPercent(t, a.proc.Pid(), 5*time.Second)
	for _, n := range []*clusterNodeProc{b, cc} {
		testutil.Start(t, ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-i", n.rtmpURL("/live/alice"), "-c", "copy", "-f", "null", "-")
	}
	require.Eventually(t, func() bool {
		_, viewers, err := channelLive(a, "alice")
		return err == nil && viewers >= 2
	}, 15*time.Second, 200*time.Millisecond, "viewers of b and c counted on a")
	// C's /stat lists the relayed stream, its pull labelled, beside its player.
	_, stat, _ = getBody(t, cc.httpURL("/stat"))
	require.Contains(t, stat, "<name>alice</name>")
	require.Contains(t, stat, "<flashver>"+source.RelayFlashVer+"</flashver>")
	pulling := cpuPercent(t, a.proc.Pid(), 5*time.Second)
	t.Logf("%s: origin CPU %.1f%% of a core with the publisher alone (and HLS probes lingering), %.1f%% with 2 edges pulling",
		filepath.Base(t.Name()), idle, pulling)

	// Webhooks fire once in the cluster: the go-live on its origin, a chat message sent on
	// C to a channel live on A, a follow made on C.
	chatC := dialChat(t, cc, bobC, "alice")
	msg, err = json.Marshal(map[string]string{"type": "message", "text": "hello from c"})
	require.NoError(t, err)
	require.NoError(t, chatC.Write(context.Background(), websocket.MessageText, msg))
	waitChatText(t, onB, "hello from c")
	require.Eventually(t, func() bool {
		return c.hooks.count("stream.started alice") == 1 && c.hooks.count("chat.message alice hello from c") == 1 &&
			c.hooks.count("follow alice") == 1
	}, 10*time.Second, 100*time.Millisecond, "webhooks: %v", c.hooks)
	time.Sleep(time.Second) // duplicates would arrive by now
	require.Equal(t, 1, c.hooks.count("stream.started alice"), "%v", c.hooks)
	require.Equal(t, 1, c.hooks.count("chat.message alice hello from c"))
	require.Equal(t, 1, c.hooks.count("follow alice"))
	live, _, err := channelLive(cc, "alice")
	require.NoError(t, err)
	require.True(t, live)

	// 4. kill -9 of A: B and C show the channel offline within 10 s.
	a.proc.Stop() // SIGKILL
	killed := time.Now()
	for _, n := range []*clusterNodeProc{b, cc} {
		require.Eventually(t, func() bool {
			live, _, err := channelLive(n, "alice")
			return err == nil && !live && !strings.Contains(strings.Join(streamsOf(n), ","), "alice")
		}, 10*time.Second-time.Since(killed), 100*time.Millisecond, "alice offline on %s", n.name)
	}
	t.Logf("%s: alice offline on b and c %v after kill -9 of her origin", filepath.Base(t.Name()), time.Since(killed).Round(time.Millisecond))

	// The channel can go live again on another node.
	pub.Stop()
	repub := publish(t, ctx, b.rtmpURL("/live/"+key), defaultPublish)
	require.Eventually(t, func() bool {
		live, _, err := channelLive(cc, "alice")
		return err == nil && live
	}, 20*time.Second, 100*time.Millisecond, "alice live again (on b): %s", repub.Output())
	// 5. C's viewers can watch again: C now relays from B.
	require.ElementsMatch(t, av, codecs(ffprobe(t, cc.rtmpURL("/live/alice"))), "rtmp from c after the move")
	require.ElementsMatch(t, av, codecs(ffprobe(t, cc.httpURL("/hls/alice/index.m3u8"))), "hls from c after the move")

	// Rotating the key on C cuts the stream on B, its origin.
	aliceC := loginOn(t, cc, "alice")
	aliceC.call("POST", "/api/v1/me/stream-key", nil, http.StatusOK, nil)
	exited, _ = repub.Wait(10 * time.Second)
	require.True(t, exited, "the publisher on b was cut")
	require.Eventually(t, func() bool {
		live, _, err := channelLive(cc, "alice")
		return err == nil && !live
	}, 10*time.Second, 100*time.Millisecond)
	require.Contains(t, b.proc.Output(), "stream ended on request of another node")
	require.NotContains(t, b.proc.Output()+cc.proc.Output(), key, "the stream key is never logged")
}
