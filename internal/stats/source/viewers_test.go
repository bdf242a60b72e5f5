package source_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/stats"
)

// player is one simulated HTTP viewer: its own goroutine and connections, from its own
// local address and User-Agent.
type player struct {
	name     string
	cancel   context.CancelFunc
	done     chan struct{}
	tr       *http.Transport
	requests atomic.Int64
	errs     atomic.Int64
}

func (p *player) stop() {
	p.cancel()
	<-p.done
	p.tr.CloseIdleConnections()
}

type playerKind int

const (
	llWithSession playerKind = iota // opens index.m3u8, follows its variant URI (?s=), blocking LL-HLS reloads
	llDirect                        // opens stream.m3u8 directly (no session id), plain reloads
	tsDirect                        // opens ts/index.m3u8 directly (no session id)
	dashWithID                      // opens index.mpd?s=ID (as a watch page would)
	dashPlain                       // opens index.mpd
)

func (e *env) startPlayer(t *testing.T, kind playerKind, name, ip, ua string) *player {
	t.Helper()
	client, tr := clientFrom(ip)
	ctx, cancel := context.WithCancel(context.Background())
	p := &player{name: name, cancel: cancel, done: make(chan struct{}), tr: tr}
	base := e.http.URL
	get := func(u string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("User-Agent", ua)
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		p.requests.Add(1)
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: status %d", u, resp.StatusCode)
		}
		return b, err
	}
	sleep := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	go func() {
		defer close(p.done)
		var err error
		switch kind {
		case llWithSession, llDirect:
			err = playLL(ctx, base+"/hls/alice/", kind == llWithSession, get, sleep, func() { p.errs.Add(1) })
		case tsDirect:
			err = playTS(base+"/hls/alice/ts/index.m3u8", get, sleep, func() { p.errs.Add(1) })
		case dashWithID, dashPlain:
			u := base + "/dash/alice/index.mpd"
			if kind == dashWithID {
				u += "?s=" + stats.NewSessionID()
			}
			for {
				if _, err = get(u); err != nil && ctx.Err() == nil {
					p.errs.Add(1)
				}
				if !sleep(time.Second) { // MinimumUpdatePeriod
					break
				}
			}
		}
		if err != nil && ctx.Err() == nil {
			p.errs.Add(1)
			t.Errorf("player %s: %v", name, err)
		}
	}()
	return p
}

// playLL plays LL-HLS as hls.js does in low-latency mode: blocking playlist reloads for
// the next part, then that part. Without a session it polls the playlist plainly, as a
// player that ignores the multivariant playlist.
//
// A failed playlist request is retried after a short wait (players do), and counted.
func playLL(ctx context.Context, dir string, session bool, get func(string) ([]byte, error),
	sleep func(time.Duration) bool, failed func()) error {
	playlist := dir + "stream.m3u8"
	if session {
		mv, err := get(dir + "index.m3u8")
		if err != nil {
			return err
		}
		uri := lastLine(mv)
		if !strings.HasPrefix(uri, "stream.m3u8?s=") {
			return fmt.Errorf("variant uri %q carries no session", uri)
		}
		playlist = dir + uri
	}
	next := ""
	for ctx.Err() == nil {
		u := playlist
		if session && next != "" {
			u += next
		}
		pl, err := get(u)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failed()
			next = ""
			if !sleep(500 * time.Millisecond) {
				return nil
			}
			continue
		}
		msn, part, hint, last := parseLL(pl)
		if session {
			next = "&_HLS_msn=" + strconv.FormatUint(msn, 10) + "&_HLS_part=" + strconv.Itoa(part)
			if hint != "" {
				_, _ = get(dir + hint) // waits for the part
			}
		} else {
			if last != "" {
				_, _ = get(dir + last)
			}
			if !sleep(time.Second) {
				return nil
			}
		}
	}
	return nil
}

// parseLL returns the next part to ask for (msn, part), the preload hint and the last
// listed part of an LL-HLS playlist.
func parseLL(pl []byte) (msn uint64, part int, hint, last string) {
	var seq uint64
	segs := 0
	sc := bufio.NewScanner(bytes.NewReader(pl))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"):
			seq, _ = strconv.ParseUint(strings.TrimPrefix(l, "#EXT-X-MEDIA-SEQUENCE:"), 10, 64)
		case strings.HasPrefix(l, "#EXT-X-SKIP:SKIPPED-SEGMENTS="):
			n, _ := strconv.Atoi(strings.TrimPrefix(l, "#EXT-X-SKIP:SKIPPED-SEGMENTS="))
			segs += n
		case strings.HasPrefix(l, "#EXTINF:"):
			segs++
			part = 0
		case strings.HasPrefix(l, "#EXT-X-PART:"):
			part++
			last = attr(l, "URI")
		case strings.HasPrefix(l, "#EXT-X-PRELOAD-HINT:"):
			hint = attr(l, "URI")
		}
	}
	return seq + uint64(segs), part, hint, last
}

func attr(line, name string) string {
	i := strings.Index(line, name+`="`)
	if i < 0 {
		return ""
	}
	rest := line[i+len(name)+2:]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		return rest[:j]
	}
	return ""
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// playTS polls the MPEG-TS playlist once per second and fetches its newest segment.
func playTS(u string, get func(string) ([]byte, error), sleep func(time.Duration) bool, failed func()) error {
	base, _ := url.Parse(u)
	for {
		pl, err := get(u)
		if err != nil {
			failed()
		} else {
			if seg := lastLine(pl); !strings.HasPrefix(seg, "#") {
				ref, _ := url.Parse(seg)
				_, _ = get(base.ResolveReference(ref).String())
			}
		}
		if !sleep(time.Second) {
			return nil
		}
	}
}

// steadyCount samples count every 250 ms for d and returns the smallest and largest.
func steadyCount(count func() int, d time.Duration) (lo, hi int) {
	lo, hi = 1<<30, -1
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		n := count()
		lo, hi = min(lo, n), max(hi, n)
	}
	return lo, hi
}

// within5 reports whether n is within ±5 % of want.
func within5(n, want int) bool {
	return float64(n) >= 0.95*float64(want) && float64(n) <= 1.05*float64(want)
}

// waitCount waits until count() is within ±5 % of want and returns how long it took.
func waitCount(t *testing.T, count func() int, want int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if within5(count(), want) {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("count %d, want %d ±5%% within %v", count(), want, timeout)
	return 0
}

func stopAll(ps []*player) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop()
		}()
	}
	wg.Wait()
}

func TestHLSViewerCount(t *testing.T) {
	e := newEnv(t)
	e.publish("alice")

	// 40 viewers: 24 LL-HLS players through the multivariant playlist, three behind each
	// of 8 addresses with the same User-Agent (only their session ids tell them apart);
	// 8 players of the media playlist without id, two per address with distinct
	// User-Agents; 8 MPEG-TS players without id on one address, each its own User-Agent.
	const n = 40
	var players []*player
	for i := range 24 {
		players = append(players, e.startPlayer(t, llWithSession, fmt.Sprintf("ll%d", i),
			fmt.Sprintf("127.0.0.%d", 2+i/3), "hls.js/1.6 test"))
	}
	for i := range 8 {
		players = append(players, e.startPlayer(t, llDirect, fmt.Sprintf("direct%d", i),
			fmt.Sprintf("127.0.1.%d", 1+i/2), fmt.Sprintf("player-%d", i%2)))
	}
	for i := range 8 {
		players = append(players, e.startPlayer(t, tsDirect, fmt.Sprintf("ts%d", i), "127.0.2.1",
			fmt.Sprintf("VLC/3.0.%d", i)))
	}
	defer stopAll(players)
	count := func() int { return e.stats.HLS.Count("alice") }

	took := waitCount(t, count, n, 20*time.Second)
	lo, hi := steadyCount(count, 4*time.Second)
	t.Logf("HLS: %d viewers counted after %v; steady state over 4 s: min %d, max %d (want %d ±5%%)",
		n, took.Round(time.Millisecond), lo, hi, n)
	require.True(t, within5(lo, n) && within5(hi, n), "steady count in [%d, %d], want %d ±5%%", lo, hi, n)

	rep := e.stats.Report()
	require.Len(t, rep.Streams, 1)
	require.True(t, within5(rep.Streams[0].Viewers.HLS, n), "report: %+v", rep.Streams[0].Viewers)
	require.True(t, within5(rep.Server.Connections.HLS, n))

	// 10 viewers stop (6 through the multivariant, 2 direct, 2 TS): they leave the count
	// within three target durations (2 s segments: 6 s) and a sweep.
	stopped := append(append(append([]*player{}, players[:6]...), players[24:26]...), players[32:34]...)
	start := time.Now()
	stopAll(stopped)
	waitCount(t, count, n-10, 3*2*time.Second+2*time.Second)
	t.Logf("HLS: 10 stopped viewers left the count after %v", time.Since(start).Round(time.Millisecond))
	lo, hi = steadyCount(count, 2*time.Second)
	require.True(t, within5(lo, n-10) && within5(hi, n-10), "count in [%d, %d], want %d ±5%%", lo, hi, n-10)

	requireFewErrors(t, players)
}

// requireFewErrors checks that the players' requests nearly all succeeded (a loaded CI
// machine may time out a blocking request now and then; players retry those).
func requireFewErrors(t *testing.T, players []*player) {
	t.Helper()
	var reqs, errs int64
	for _, p := range players {
		require.Greater(t, p.requests.Load(), int64(2), "player %s", p.name)
		reqs += p.requests.Load()
		errs += p.errs.Load()
	}
	t.Logf("%d requests, %d failed", reqs, errs)
	require.LessOrEqual(t, errs*100, reqs, "more than 1%% of the requests failed")
}

func TestDASHViewerCount(t *testing.T) {
	e := newEnv(t)
	e.publish("alice")

	// 20 viewers: 10 watch pages opening index.mpd?s=ID on one address with one
	// User-Agent, 10 plain players, two per address with distinct User-Agents.
	const n = 20
	var players []*player
	for i := range 10 {
		players = append(players, e.startPlayer(t, dashWithID, fmt.Sprintf("page%d", i), "127.0.3.1", "dash.js test"))
	}
	for i := range 10 {
		players = append(players, e.startPlayer(t, dashPlain, fmt.Sprintf("plain%d", i),
			fmt.Sprintf("127.0.4.%d", 1+i/2), fmt.Sprintf("player-%d", i%2)))
	}
	defer stopAll(players)
	count := func() int { return e.stats.DASH.Count("alice") }

	took := waitCount(t, count, n, 20*time.Second)
	lo, hi := steadyCount(count, 3*time.Second)
	t.Logf("DASH: %d viewers counted after %v; steady state over 3 s: min %d, max %d (want %d ±5%%)",
		n, took.Round(time.Millisecond), lo, hi, n)
	require.True(t, within5(lo, n) && within5(hi, n), "steady count in [%d, %d], want %d ±5%%", lo, hi, n)

	stopped := append(append([]*player{}, players[:3]...), players[10:12]...)
	start := time.Now()
	stopAll(stopped)
	waitCount(t, count, n-5, 3*2*time.Second+2*time.Second)
	t.Logf("DASH: 5 stopped viewers left the count after %v", time.Since(start).Round(time.Millisecond))
	requireFewErrors(t, players)
}
