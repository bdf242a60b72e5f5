// Command idlerss measures the server memory per idle RTMP player: it publishes a stream
// that sends almost nothing (sequence headers, one key frame, then one audio frame per
// second), samples the server's RSS (the PID and its children), connects N players, waits
// for them to settle, samples again and prints (after - before) / N.
//
//	go run ./internal/loadgen/cmd/idlerss -pid $(pgrep -o -x onair) -clip clip.flv \
//	    -publish rtmp://127.0.0.1:1935/live/KEY -play rtmp://127.0.0.1:1935/live/NAME -n 1000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/onair/onair/internal/loadgen"
)

func main() {
	pid := flag.Int("pid", 0, "server PID (its child processes are counted too)")
	clipPath := flag.String("clip", "", "FLV clip (H.264 + AAC)")
	pub := flag.String("publish", "", "publish URL (loopback)")
	play := flag.String("play", "", "play URL (loopback)")
	n := flag.Int("n", 1000, "idle players (at most 5000)")
	settle := flag.Duration("settle", 5*time.Second, "wait after connecting before the second sample")
	flag.Parse()
	if err := run(*pid, *clipPath, *pub, *play, *n, *settle); err != nil {
		fmt.Fprintln(os.Stderr, "idlerss:", err)
		os.Exit(1)
	}
}

func run(pid int, clipPath, pub, play string, n int, settle time.Duration) error {
	if pid <= 0 || n <= 0 || n > loadgen.MaxClients {
		return fmt.Errorf("need -pid and 0 < -n <= %d", loadgen.MaxClients)
	}
	for _, u := range []string{pub, play} {
		if !strings.HasPrefix(u, "rtmp://127.") && !strings.HasPrefix(u, "rtmp://localhost") {
			return fmt.Errorf("urls must target loopback")
		}
	}
	clip, err := loadgen.LoadClip(clipPath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	pubErr := make(chan error, 1)
	wg.Go(func() { pubErr <- loadgen.IdlePublish(ctx, pub, clip) })
	time.Sleep(2 * time.Second)
	// a probe player sets up the stream's per-stream state before the baseline
	probe := make(chan error, 1)
	wg.Go(func() { loadgen.IdlePlay(ctx, play, func(err error) { probe <- err }) })
	if err := <-probe; err != nil {
		return fmt.Errorf("probe player: %w", err)
	}
	time.Sleep(time.Second)
	before := rss(pid)
	var failed sync.Map
	var ready sync.WaitGroup
	for i := range n {
		ready.Add(1)
		wg.Go(func() {
			loadgen.IdlePlay(ctx, play, func(err error) {
				if err != nil {
					failed.Store(i, err)
				}
				ready.Done()
			})
		})
		if i%100 == 99 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	ready.Wait()
	time.Sleep(settle)
	after := rss(pid)
	nf := 0
	failed.Range(func(_, v any) bool {
		if nf == 0 {
			fmt.Fprintln(os.Stderr, "first player error:", v)
		}
		nf++
		return true
	})
	select {
	case err := <-pubErr:
		return fmt.Errorf("publisher ended: %v", err)
	default:
	}
	ok := n - nf
	fmt.Printf("players=%d failed=%d rss_before_kb=%d rss_after_kb=%d per_player_kb=%.1f\n",
		n, nf, before, after, float64(after-before)/float64(max(ok, 1)))
	return nil
}

// rss sums VmRSS (kB) of pid and its descendants.
func rss(pid int) int64 {
	var total int64
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			total += kb
		}
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	seen := map[int]bool{}
	for _, t := range tasks {
		c, _ := os.ReadFile(t)
		for f := range strings.FieldsSeq(string(c)) {
			if child, err := strconv.Atoi(f); err == nil && !seen[child] {
				seen[child] = true
				total += rss(child)
			}
		}
	}
	return total
}
