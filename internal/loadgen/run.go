package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Run drives the clients of cfg against the server until cfg.Duration has passed or ctx
// ends, writing a progress line to progress (may be nil) every cfg.ProgressInterval. The
// Report is returned also when ctx ended early; an error means the run could not start.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if progress == nil {
		progress = io.Discard
	}
	var clip *Clip
	if cfg.Publishers > 0 {
		if clip, err = LoadClip(cfg.MediaFile); err != nil {
			return nil, err
		}
	}

	start := time.Now()
	rep := &Report{Start: start}
	if clip != nil {
		rep.ClipBitrate, rep.ClipFPS = clip.Bitrate, clip.FPS
	}
	n := cfg.Publishers + cfg.Players + cfg.HLSViewers + cfg.LLHLSViewers
	rep.Clients = make([]ClientResult, n)
	live := map[string]*liveCounters{KindPublisher: {}, KindRTMP: {}, KindHLS: {}, KindLLHLS: {}}

	runCtx, cancelRun := context.WithDeadline(ctx, start.Add(cfg.Duration))
	defer cancelRun()
	// Publishers outlive the players so that the players' last seconds are fed.
	pubCtx, cancelPub := context.WithCancel(context.Background())
	defer cancelPub()

	transport := &http.Transport{
		MaxIdleConnsPerHost: max(cfg.HLSViewers+cfg.LLHLSViewers, 2),
		DisableCompression:  true,
		IdleConnTimeout:     30 * time.Second,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}

	var pubs, viewers sync.WaitGroup
	idx := 0
	for i, u := range cfg.PublishURLs {
		r := &rep.Clients[idx]
		idx++
		*r = ClientResult{Kind: KindPublisher, ID: i, Stream: fmt.Sprintf("#%d", i), TTFFMS: -1}
		if i < len(cfg.PlayNames) {
			r.Stream = cfg.PlayNames[i]
		}
		pubs.Go(func() { runPublisher(pubCtx, &cfg, u, clip, r, live[KindPublisher]) })
	}
	stopPubs := context.AfterFunc(runCtx, cancelPub)
	defer stopPubs()

	type job struct {
		kind string
		id   int
	}
	var jobs []job
	for i := range cfg.Players {
		jobs = append(jobs, job{KindRTMP, i})
	}
	for i := range cfg.HLSViewers {
		jobs = append(jobs, job{KindHLS, i})
	}
	for i := range cfg.LLHLSViewers {
		jobs = append(jobs, job{KindLLHLS, i})
	}
	// interleave kinds over the ramp: the i-th job starts at StartDelay + Ramp*i/len
	rampStart := start.Add(min(cfg.StartDelay, cfg.Duration/2))
	progressDone := make(chan struct{})
	var progWG sync.WaitGroup
	if cfg.ProgressInterval > 0 {
		progWG.Go(func() { reportProgress(runCtx, progressDone, progress, start, cfg.ProgressInterval, live, &cfg) })
	}
	func() {
		for k, j := range jobs {
			at := rampStart
			if len(jobs) > 1 {
				at = at.Add(cfg.Ramp * time.Duration(k) / time.Duration(len(jobs)))
			}
			select {
			case <-runCtx.Done():
				// not started: recorded as such
				for _, j := range jobs[k:] {
					r := &rep.Clients[idx]
					idx++
					*r = ClientResult{Kind: j.kind, ID: j.id, TTFFMS: -1, Err: "not started"}
				}
				return
			case <-time.After(time.Until(at)):
			}
			r := &rep.Clients[idx]
			idx++
			name := cfg.PlayNames[j.id%len(cfg.PlayNames)]
			*r = ClientResult{Kind: j.kind, ID: j.id, Stream: name, TTFFMS: -1}
			switch j.kind {
			case KindRTMP:
				u := cfg.RTMPBase + "/" + url.PathEscape(name)
				viewers.Go(func() { runPlayer(runCtx, &cfg, u, r, live[KindRTMP]) })
			case KindHLS:
				viewers.Go(func() { runTSViewer(runCtx, &cfg, client, name, r, live[KindHLS]) })
			case KindLLHLS:
				viewers.Go(func() { runLLViewer(runCtx, &cfg, client, name, r, live[KindLLHLS]) })
			}
		}
	}()
	<-runCtx.Done()
	viewers.Wait()
	cancelPub()
	pubs.Wait()
	close(progressDone)
	progWG.Wait()
	rep.DurationS = time.Since(start).Seconds()
	rep.summarize()
	return rep, nil
}

func reportProgress(ctx context.Context, done <-chan struct{}, w io.Writer, start time.Time, every time.Duration,
	live map[string]*liveCounters, cfg *Config) {
	t := time.NewTicker(every)
	defer t.Stop()
	var last int64
	lastAt := start
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		now := time.Now()
		var total int64
		for _, c := range live {
			total += c.bytes.Load()
		}
		mbps := float64(total-last) * 8 / 1e6 / now.Sub(lastAt).Seconds()
		last, lastAt = total, now
		fmt.Fprintf(w, "t=%4.0fs publish %d/%d rtmp %d/%d hls-ts %d/%d ll-hls %d/%d (playing/wanted) %.1f Mbit/s\n",
			now.Sub(start).Seconds(),
			live[KindPublisher].active.Load(), cfg.Publishers,
			live[KindRTMP].playing.Load(), cfg.Players,
			live[KindHLS].playing.Load(), cfg.HLSViewers,
			live[KindLLHLS].playing.Load(), cfg.LLHLSViewers, mbps)
		if ctx.Err() != nil {
			return
		}
	}
}
