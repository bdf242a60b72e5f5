package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/loadgen"
	"github.com/onair/onair/internal/testutil"
)

// The CDN test's size: ONAIR_CDN_VIEWERS viewers (half MPEG-TS HLS, half LL-HLS) for
// ONAIR_CDN_SECONDS. The defaults keep CI short; the figure is 1,000 viewers.
// ONAIR_CDN_DIRECT=1 sends the same viewers to the origin instead, for comparison.
const (
	defaultCDNViewers = 100
	defaultCDNSeconds = 15
)

// requireNginx returns the nginx binary. Like ffmpeg, a missing one skips the test unless
// ONAIR_REQUIRE_FFMPEG=1 (CI installs Debian's nginx package).
func requireNginx(t *testing.T) string {
	t.Helper()
	for _, bin := range []string{"nginx", "/usr/sbin/nginx"} {
		if p, err := exec.LookPath(bin); err == nil {
			return p
		}
	}
	if os.Getenv("ONAIR_REQUIRE_FFMPEG") == "1" {
		t.Fatal("nginx not found and ONAIR_REQUIRE_FFMPEG=1")
	}
	t.Skip("nginx not found")
	return ""
}

// freeAddr returns a loopback address with a free port.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// deployConf reads a file of docs/deploy and makes the replacements, each of whose old
// strings must appear exactly once (so that the documented file stays what is tested).
func deployConf(t *testing.T, name string, repl ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "deploy", name))
	require.NoError(t, err)
	conf := string(b)
	for i := 0; i+1 < len(repl); i += 2 {
		require.Equal(t, 1, strings.Count(conf, repl[i]), "docs/deploy/%s must contain %q once", name, repl[i])
		conf = strings.Replace(conf, repl[i], repl[i+1], 1)
	}
	return conf
}

// tempPaths are the http {} directives that keep nginx's temporary files in dir.
func tempPaths(dir string) string {
	return fmt.Sprintf(`client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
`, dir)
}

// runNginx checks and runs nginx with the main configuration file mainPath (in dir) as a
// child process until the test ends, and waits until healthURL answers 200.
func runNginx(t *testing.T, dir, mainPath, healthURL string) {
	t.Helper()
	bin := requireNginx(t)
	errLog := filepath.Join(dir, "error.log")
	out, err := exec.Command(bin, "-t", "-p", dir, "-e", errLog, "-c", mainPath).CombinedOutput()
	require.NoError(t, err, "nginx -t: %s", out)

	cmd := exec.Command(bin, "-p", dir, "-e", errLog, "-c", mainPath, "-g", "daemon off;")
	var logs testutil.LockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		// SIGTERM: the master stops its workers and exits; kill the group if it hangs.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			el, _ := os.ReadFile(errLog)
			t.Logf("nginx output:\n%s\nerror.log:\n%s", logs.String(), el)
		}
	})
	require.Eventually(t, func() bool {
		res, err := http.Get(healthURL)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, 10*time.Second, 50*time.Millisecond, "nginx did not start: %s", logs.String())
}

// rootUser is the user directive that lets nginx's workers, when started by root, reach
// the test's private directories.
func rootUser() string {
	if os.Geteuid() == 0 {
		return "user root;"
	}
	return ""
}

// startNginxCache runs docs/deploy/nginx-cache.conf, as documented, in front of origin
// (host:port) on a loopback port, with its cache and logs in a temporary directory. It
// returns the edge's base URL and the directory.
func startNginxCache(t *testing.T, origin string) (string, string) {
	t.Helper()
	requireNginx(t)
	dir := t.TempDir()
	edge := freeAddr(t)
	conf := deployConf(t, "nginx-cache.conf",
		"127.0.0.1:8080", origin,
		"listen 80;", "listen "+edge+";",
		"/var/cache/nginx/onair", filepath.Join(dir, "cache"),
		"/var/log/nginx/onair-edge.log", filepath.Join(dir, "edge.log"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "onair-cache.conf"), []byte(conf), 0o600))

	// The main file is Debian's nginx.conf cut to what a test needs: the cache file is
	// included inside http {} like /etc/nginx/conf.d/*.conf.
	main := fmt.Sprintf(`%s
worker_processes 1;
worker_rlimit_nofile 16384;
pid %[2]s/nginx.pid;
events { worker_connections 8192; }
http {
    %[3]s
    types { application/vnd.apple.mpegurl m3u8; video/mp4 mp4 m4s; }
    include %[2]s/onair-cache.conf;
}
`, rootUser(), dir, tempPaths(dir))
	mainPath := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(mainPath, []byte(main), 0o600))
	runNginx(t, dir, mainPath, "http://"+edge+"/healthz")
	return "http://" + edge, dir
}

// originRequests returns the origin's HLS request counts by kind (onair's own
// onair_http_media_requests_total).
func originRequests(t *testing.T, ts *testServer) map[string]float64 {
	t.Helper()
	mfs, err := ts.stats.Registry().Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "onair_http_media_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var proto, kind string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "protocol":
					proto = l.GetValue()
				case "kind":
					kind = l.GetValue()
				}
			}
			if proto == "hls" {
				out[kind] += m.GetCounter().GetValue()
				out["total"] += m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, name)
	return n
}

// getCached fetches url and returns the status, body and the edge's X-Cache-Status.
func getCached(t *testing.T, url string) (int, string, string) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b), res.Header.Get("X-Cache-Status")
}

var partRE = regexp.MustCompile(`(?m)^#EXT-X-PART:.*URI="([^"]+)"`)

// nextPart returns the (msn, part) of the first part not yet in an LL-HLS playlist.
func nextPart(t *testing.T, playlist string) (uint64, int) {
	t.Helper()
	m := regexp.MustCompile(`#EXT-X-MEDIA-SEQUENCE:(\d+)`).FindStringSubmatch(playlist)
	require.NotNil(t, m, playlist)
	msn, _ := strconv.ParseUint(m[1], 10, 64)
	parts := 0
	for _, l := range strings.Split(playlist, "\n") {
		switch {
		case strings.HasPrefix(l, "#EXT-X-PART:"):
			parts++
		case l != "" && !strings.HasPrefix(l, "#"):
			msn, parts = msn+1, 0 // a whole segment: the parts so far were its own
		}
	}
	return msn, parts
}

// TestCDNCache runs nginx with docs/deploy/nginx-cache.conf in front of a live onair:
// the cache key ignores viewer session ids, LL-HLS blocking reloads pass through and
// collapse, and many HLS and LL-HLS viewers through the cache cost the origin about one
// request per segment or part, not one per viewer.
func TestCDNCache(t *testing.T) {
	testutil.RequireFFmpeg(t)
	requireNginx(t)
	viewers := envInt(t, "ONAIR_CDN_VIEWERS", defaultCDNViewers)
	seconds := envInt(t, "ONAIR_CDN_SECONDS", defaultCDNSeconds)

	ts := mustStartServer(t, nil)
	key := mustCreateUser(t, ts, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := defaultPublish
	o.seconds = seconds + 60
	publish(t, ctx, ts.rtmpURL("/live/"+key), o)
	waitLive(t, ts, "alice")
	waitMediaPlaylist(t, ts, "alice", fmp4Playlist, 2)
	waitPlaylist(t, ts, "alice", 2)
	edge, dir := startNginxCache(t, ts.HTTPAddr().String())

	t.Run("session ids share the cache", func(t *testing.T) {
		code, pl, _ := getCached(t, edge+"/hls/alice/stream.m3u8?s=viewer1")
		require.Equal(t, http.StatusOK, code)
		parts := partRE.FindAllStringSubmatch(pl, -1)
		require.NotEmpty(t, parts, pl)
		part := edge + "/hls/alice/" + parts[0][1]
		code, _, first := getCached(t, part+"?s=viewer1")
		require.Equal(t, http.StatusOK, code)
		code, _, second := getCached(t, part+"?s=viewer2")
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, []string{"MISS", "HIT"}, first)
		require.Equal(t, "HIT", second, "another viewer's session id hits the same cached part")

		// The multivariant playlist is never cached: each viewer gets its own session id.
		_, mv1, st := getCached(t, edge+"/hls/alice/index.m3u8")
		_, mv2, _ := getCached(t, edge+"/hls/alice/index.m3u8")
		require.Empty(t, st)
		require.NotEqual(t, mv1, mv2, "each viewer gets a new session id")

		// The origin counts the edge as one viewer: the edge strips the session ids of
		// the playlist requests it forwards. The same two viewers directly count two.
		idRE := regexp.MustCompile(`\?s=([A-Za-z0-9_-]+)`)
		ids := []string{idRE.FindStringSubmatch(mv1)[1], idRE.FindStringSubmatch(mv2)[1]}
		viewers := func() int { return ts.stats.Viewers("alice", 0).HLS }
		before := viewers()
		for _, id := range ids {
			code, _, _ := getCached(t, edge+"/hls/alice/stream.m3u8?s="+id)
			require.Equal(t, http.StatusOK, code)
		}
		time.Sleep(200 * time.Millisecond) // the origin counts after answering
		behind := viewers()
		require.LessOrEqual(t, behind, before+1, "viewers behind the edge count once")
		for _, id := range ids {
			code, _, _ := getCached(t, ts.httpURL("/hls/alice/stream.m3u8?s="+id))
			require.Equal(t, http.StatusOK, code)
		}
		require.Eventually(t, func() bool { return viewers() == behind+2 }, 5*time.Second, 50*time.Millisecond,
			"direct viewers count by session")
	})

	t.Run("blocking reload passes through and collapses", func(t *testing.T) {
		_, pl, _ := getCached(t, ts.httpURL("/hls/alice/stream.m3u8"))
		msn, part := nextPart(t, pl)
		// A part two ahead: it does not exist yet when the requests arrive.
		part++
		before := originRequests(t, ts)["blocking"]
		const n = 20
		var wg sync.WaitGroup
		codes := make([]int, n)
		bodies := make([]string, n)
		took := make([]time.Duration, n)
		url := fmt.Sprintf("%s/hls/alice/stream.m3u8?_HLS_msn=%d&_HLS_part=%d", edge, msn, part)
		for i := range n {
			wg.Go(func() {
				start := time.Now()
				res, err := http.Get(url + "&s=v" + strconv.Itoa(i))
				if err != nil {
					return
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				codes[i], bodies[i], took[i] = res.StatusCode, string(b), time.Since(start)
			})
		}
		wg.Wait()
		after := originRequests(t, ts)["blocking"]
		for i := range n {
			require.Equal(t, http.StatusOK, codes[i], "request %d", i)
			got, gotPart := nextPart(t, bodies[i])
			require.True(t, got > msn || (got == msn && gotPart > part), "the answer holds the asked-for part %d.%d:\n%s", msn, part, bodies[i])
			require.Less(t, took[i], 10*time.Second)
		}
		slowest := slices.Max(took)
		t.Logf("%d blocking reloads for part %d.%d through the cache: slowest %v, origin got %v of them",
			n, msn, part, slowest.Round(time.Millisecond), after-before)
		require.LessOrEqual(t, after-before, 3.0, "concurrent blocking reloads collapse into one origin request")
	})

	t.Run(fmt.Sprintf("%d viewers", viewers), func(t *testing.T) {
		ll := viewers / 2
		before := originRequests(t, ts)
		start := time.Now()
		base := edge
		if os.Getenv("ONAIR_CDN_DIRECT") == "1" {
			base = ts.httpURL("") // the same load without the cache, for comparison
		}
		rep, err := loadgen.Run(ctx, loadgen.Config{
			PlayNames:        []string{"alice"},
			HTTPBase:         base,
			HLSViewers:       viewers - ll,
			LLHLSViewers:     ll,
			Duration:         time.Duration(seconds) * time.Second,
			Ramp:             time.Duration(seconds) * time.Second / 4,
			StartDelay:       time.Millisecond,
			ProgressInterval: -1,
			ConnectTimeout:   15 * time.Second,
		}, nil)
		require.NoError(t, err)
		elapsed := time.Since(start).Seconds()
		after := originRequests(t, ts)
		var sb strings.Builder
		require.NoError(t, rep.WriteTable(&sb))
		t.Logf("load generator against %s:\n%s", base, sb.String())

		viewerReqs := 0
		for _, s := range rep.Summaries {
			viewerReqs += s.RequestsTotal
			// Every viewer got media through the cache (keep-up on a loaded 2-core
			// machine is reported, not asserted).
			require.GreaterOrEqual(t, s.Started, s.Clients*95/100, "%s viewers that got media", s.Kind)
		}
		d := func(k string) float64 { return after[k] - before[k] }
		t.Logf("origin: %.0f requests in %.1f s (%.1f/s) for %d viewers making %d requests (%.0f/s): "+
			"segments %.0f, parts %.0f, playlists %.0f, blocking %.0f, init %.0f",
			d("total"), elapsed, d("total")/elapsed, viewers, viewerReqs, float64(viewerReqs)/elapsed,
			d("segment"), d("part"), d("playlist"), d("blocking"), d("init"))

		// One origin request per segment (TS), part (LL-HLS) and playlist change, not one
		// per viewer: bounded by the media produced in the run, whatever the viewers.
		// TS segments are about 1 s and parts 250 ms; playlists are cached 1 s; blocking
		// reloads come once per part. Twice that plus a margin allows for misses at
		// part boundaries.
		if base != edge {
			return // the comparison run: nothing to assert about the cache
		}
		perSecond := 1.0 + 4 + 2 + 4 // segments + parts + reloads (TS, LL) + blocking
		require.Less(t, d("total"), 2*perSecond*elapsed+50, "origin requests grow with the media, not the viewers")
		require.Greater(t, float64(viewerReqs), 10*d("total"), "the cache answers most requests")

		// The edge's log has what the origin no longer sees: each viewer's requests.
		log, err := os.ReadFile(filepath.Join(dir, "edge.log"))
		require.NoError(t, err)
		require.Greater(t, strings.Count(string(log), "cache=HIT"), viewerReqs/2)
	})
}

// TestNginxLoadBalancer runs docs/deploy/nginx-lb.conf (its node list cut to one onair)
// and uses every path through it: RTMP publish over the stream {} proxy, HLS with channel
// affinity, the chat WebSocket upgrade, pages, and the operator endpoints.
func TestNginxLoadBalancer(t *testing.T) {
	testutil.RequireFFmpeg(t)
	requireNginx(t)
	const streamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"
	if _, err := os.Stat(streamModule); err != nil {
		if os.Getenv("ONAIR_REQUIRE_FFMPEG") == "1" {
			t.Fatal("nginx stream module missing (Debian package libnginx-mod-stream) and ONAIR_REQUIRE_FFMPEG=1")
		}
		t.Skip("nginx stream module missing (Debian package libnginx-mod-stream)")
	}
	ts := mustStartServer(t, nil)
	key := mustCreateUser(t, ts, "alice")
	dir := t.TempDir()
	web, rtmp := freeAddr(t), freeAddr(t)
	origin := ts.HTTPAddr().String()
	repl := []string{
		"user www-data;", rootUser(),
		// Debian's module files name paths relative to its own prefix, not the test's.
		"include /etc/nginx/modules-enabled/*.conf;", "load_module " + streamModule + ";",
		"pid /run/nginx.pid;", "pid " + dir + "/nginx.pid;",
		"/var/log/nginx/access.log", filepath.Join(dir, "access.log"),
		"/var/log/nginx/error.log", filepath.Join(dir, "error.log"),
		"http {\n", "http {\n    " + tempPaths(dir),
		"listen 80;", "listen " + web + ";",
		"listen 1935;", "listen " + rtmp + ";",
	}
	conf := deployConf(t, "nginx-lb.conf", repl...)
	// One node: the first server of each upstream is this onair, the others go.
	conf = strings.ReplaceAll(conf, "10.0.0.11:8080", origin)
	conf = strings.ReplaceAll(conf, "10.0.0.11:1935", ts.RTMPAddr().String())
	var kept []string
	for _, l := range strings.Split(conf, "\n") {
		if !strings.Contains(l, "server 10.0.0.1") {
			kept = append(kept, l)
		}
	}
	mainPath := filepath.Join(dir, "nginx.conf")
	require.NoError(t, os.WriteFile(mainPath, []byte(strings.Join(kept, "\n")), 0o600))
	runNginx(t, dir, mainPath, "http://"+web+"/healthz")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := defaultPublish
	o.seconds = 30
	publish(t, ctx, "rtmp://"+rtmp+"/live/"+key, o)
	waitLive(t, ts, "alice")

	// LL-HLS through the balancer, a blocking reload included.
	var pl string
	require.Eventually(t, func() bool {
		code, body, _ := getBody(t, "http://"+web+"/hls/alice/stream.m3u8")
		pl = body
		return code == http.StatusOK && strings.Contains(body, "#EXT-X-PART:")
	}, 20*time.Second, 200*time.Millisecond)
	msn, part := nextPart(t, pl)
	code, body, _ := getBody(t, fmt.Sprintf("http://%s/hls/alice/stream.m3u8?_HLS_msn=%d&_HLS_part=%d", web, msn, part))
	require.Equal(t, http.StatusOK, code)
	got, gotPart := nextPart(t, body)
	require.True(t, got > msn || gotPart > part, body)

	// Chat: the WebSocket upgrade passes.
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	ws, res, err := websocket.Dial(wctx, "ws://"+web+"/api/v1/channels/alice/chat", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, res.StatusCode)
	ws.Close(websocket.StatusNormalClosure, "")

	// Pages and the API.
	code, body, _ = getBody(t, "http://"+web+"/@alice")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "alice")
	// Operator endpoints: allowed from the balancer's internal networks (loopback here).
	code, _, _ = getBody(t, "http://"+web+"/metrics")
	require.Equal(t, http.StatusOK, code)
}
