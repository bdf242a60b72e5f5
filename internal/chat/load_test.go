package chat_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
)

// Load run: 2,000 WebSocket clients in one room, 20 senders at 1 msg/s each (20 msg/s,
// the per-user rate limit), for ~10 s. The chat server runs in a child process (this test
// binary, re-executed) so its CPU is measured apart from the clients'. Opt in with
// ONAIR_CHAT_LOAD=1; the knobs are ONAIR_CHAT_LOAD_CLIENTS, _RATE and _SECONDS, and
// ONAIR_CHAT_LOAD_PROFILE / ONAIR_CHAT_LOAD_HEAPPROFILE write the server's CPU profile
// and a mid-run heap profile (with memory statistics) to the given paths.
//
//	ONAIR_CHAT_LOAD=1 go test -run TestLoadFanout -v ./internal/chat

const (
	loadEnv       = "ONAIR_CHAT_LOAD"
	loadServerEnv = "ONAIR_CHAT_LOAD_SERVER"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func senderName(i int) string { return fmt.Sprintf("sender_%02d", i) }

// TestLoadServerProcess is the child: it serves chat until its stdin closes.
func TestLoadServerProcess(t *testing.T) {
	if os.Getenv(loadServerEnv) != "1" {
		t.Skip("the load run's server process")
	}
	senders := envInt("ONAIR_CHAT_LOAD_RATE", 20)
	var names []string
	for i := range senders {
		names = append(names, senderName(i))
	}
	h := MustStartHarness(t, harnessOptions{users: names})
	if path := os.Getenv("ONAIR_CHAT_LOAD_PROFILE"); path != "" {
		f, err := os.Create(path)
		require.NoError(t, err)
		defer f.Close()
		require.NoError(t, pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("ADDR %s\n", strings.TrimPrefix(h.ts.URL, "http://"))
	if path := os.Getenv("ONAIR_CHAT_LOAD_HEAPPROFILE"); path != "" {
		time.Sleep(6 * time.Second) // mid-run
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		t.Logf("server mid-run: goroutines %d, heap in use %d MiB, stacks %d MiB, sys %d MiB",
			runtime.NumGoroutine(), ms.HeapInuse>>20, ms.StackInuse>>20, ms.Sys>>20)
		f, err := os.Create(path)
		require.NoError(t, err)
		require.NoError(t, pprof.WriteHeapProfile(f))
		require.NoError(t, f.Close())
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
}

func TestLoadFanout(t *testing.T) {
	if testing.Short() || os.Getenv(loadEnv) != "1" {
		t.Skip("set " + loadEnv + "=1 to run the chat load test")
	}
	nClients := envInt("ONAIR_CHAT_LOAD_CLIENTS", 2000)
	nSenders := envInt("ONAIR_CHAT_LOAD_RATE", 20) // one message per second each
	seconds := envInt("ONAIR_CHAT_LOAD_SECONDS", 10)

	// The server process.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLoadServerProcess$", "-test.v")
	cmd.Env = append(os.Environ(), loadServerEnv+"=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	var childOut bytes.Buffer
	addrc := make(chan string, 1)
	var outWG sync.WaitGroup
	outWG.Go(func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
				addrc <- addr
			} else {
				childOut.WriteString(sc.Text() + "\n")
			}
		}
	})
	defer func() {
		stdin.Close()
		outWG.Wait()
		require.NoError(t, cmd.Wait(), childOut.String())
		for line := range strings.SplitSeq(childOut.String(), "\n") {
			if strings.Contains(line, "server mid-run: ") {
				t.Log(strings.TrimSpace(line))
			}
		}
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(30 * time.Second):
		t.Fatal("server process did not start")
	}
	url := "ws://" + addr + "/api/v1/channels/alice/chat"

	// The clients: the first nSenders are signed in.
	transport := &http.Transport{MaxIdleConnsPerHost: -1}
	defer transport.CloseIdleConnections()
	type receiver struct {
		ws  *websocket.Conn
		lat []time.Duration
	}
	receivers := make([]*receiver, nClients)
	var dialWG sync.WaitGroup
	var dialErr atomic.Pointer[error]
	sem := make(chan struct{}, 32)
	start := time.Now()
	for i := range receivers {
		sem <- struct{}{}
		dialWG.Go(func() {
			defer func() { <-sem }()
			h := http.Header{}
			if i < nSenders {
				h.Set(userHeader, senderName(i))
			}
			dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
			defer dcancel()
			ws, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPHeader: h, HTTPClient: &http.Client{Transport: transport}})
			if err != nil {
				dialErr.Store(&err)
				return
			}
			ws.SetReadLimit(1 << 20)
			receivers[i] = &receiver{ws: ws, lat: make([]time.Duration, 0, seconds*nSenders+64)}
		})
	}
	dialWG.Wait()
	if p := dialErr.Load(); p != nil {
		t.Fatalf("dial: %v", *p)
	}
	t.Logf("%d clients connected in %v", nClients, time.Since(start).Round(time.Millisecond))

	var readWG sync.WaitGroup
	prefix := []byte(`"text":"`)
	for _, r := range receivers {
		readWG.Go(func() {
			for {
				_, b, err := r.ws.Read(context.Background())
				if err != nil {
					return
				}
				now := time.Now()
				i := bytes.Index(b, prefix)
				if i < 0 {
					continue
				}
				rest := b[i+len(prefix):]
				j := bytes.IndexByte(rest, ' ')
				if j < 0 {
					continue
				}
				sent, err := strconv.ParseInt(string(rest[:j]), 10, 64)
				if err != nil {
					continue
				}
				r.lat = append(r.lat, now.Sub(time.Unix(0, sent)))
			}
		})
	}

	// The senders: each sends once a second, staggered evenly.
	serverCPU0 := procCPU(t, cmd.Process.Pid)
	selfCPU0 := selfCPU()
	t0 := time.Now()
	var sent atomic.Int64
	var sendWG sync.WaitGroup
	pad := strings.Repeat("lorem ipsum ", 4)
	for i := range nSenders {
		ws := receivers[i].ws
		sendWG.Go(func() {
			time.Sleep(time.Duration(i) * time.Second / time.Duration(nSenders))
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for range seconds {
				msg := fmt.Sprintf(`{"type":"message","text":"%d %s"}`, time.Now().UnixNano(), pad)
				wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
				err := ws.Write(wctx, websocket.MessageText, []byte(msg))
				wcancel()
				if err != nil {
					return
				}
				sent.Add(1)
				<-tick.C
			}
		})
	}
	sendWG.Wait()
	time.Sleep(500 * time.Millisecond) // the last deliveries
	elapsed := time.Since(t0)
	serverCPU := procCPU(t, cmd.Process.Pid) - serverCPU0
	clientCPU := selfCPU() - selfCPU0
	rss := procRSS(t, cmd.Process.Pid)

	for _, r := range receivers {
		r.ws.CloseNow() //nolint:errcheck // done
	}
	readWG.Wait()

	var all []time.Duration
	for _, r := range receivers {
		all = append(all, r.lat...)
	}
	slices.Sort(all)
	want := int(sent.Load()) * nClients
	require.NotEmpty(t, all)
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(float64(len(all))*p))] }
	t.Logf("clients %d, messages sent %d (%.1f/s while sending), deliveries %d of %d (%.2f%%)",
		nClients, sent.Load(), float64(sent.Load())/float64(seconds), len(all), want, 100*float64(len(all))/float64(want))
	t.Logf("latency p50 %v, p90 %v, p99 %v, p99.9 %v, max %v",
		pct(0.50).Round(10*time.Microsecond), pct(0.90).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond),
		pct(0.999).Round(10*time.Microsecond), all[len(all)-1].Round(10*time.Microsecond))
	t.Logf("server process CPU %.0f%% of one core (%v over %v), RSS %d MiB; client process CPU %.0f%%",
		100*serverCPU.Seconds()/elapsed.Seconds(), serverCPU, elapsed.Round(time.Millisecond), rss>>20,
		100*clientCPU.Seconds()/elapsed.Seconds())
	require.Equal(t, want, len(all), "every client got every message")
	require.Less(t, pct(0.99), time.Second, "p99 (the goal is 100 ms; this only catches gross regressions on a busy machine)")
}

// procCPU returns the user+system CPU time of a process, from /proc/PID/stat.
func procCPU(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	// Fields after the command, which is in parentheses: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, err := strconv.ParseInt(f[11], 10, 64)
	require.NoError(t, err)
	st, err := strconv.ParseInt(f[12], 10, 64)
	require.NoError(t, err)
	const ticks = 100 // USER_HZ
	return time.Duration(ut+st) * time.Second / ticks
}

// procRSS returns a process's resident set size in bytes.
func procRSS(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			require.NoError(t, err)
			return kb << 10
		}
	}
	return 0
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
