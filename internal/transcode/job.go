package transcode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/unit"
)

// stableRun is how long a child must run for its restart backoff to start over.
const stableRun = 30 * time.Second

// stopWait is how long a child gets to finish its output once its input is closed.
const stopWait = 3 * time.Second

// job transcodes one live stream: it runs ffmpeg children one after the other.
type job struct {
	m    *Manager
	name string
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	plan       plan
	pid        int
	started    time.Time
	restarts   int
	encoder    string
	preset     string
	published  map[string]bool // rendition streams ever published
	cpuAt      time.Time
	cpuUsed    time.Duration
	cpuPercent float64
}

func newJob(m *Manager, name string) *job {
	j := &job{
		m:         m,
		name:      name,
		log:       m.Logger.With("channel", name),
		done:      make(chan struct{}),
		encoder:   m.Encoder,
		preset:    m.Preset,
		published: make(map[string]bool),
	}
	j.ctx, j.cancel = context.WithCancel(context.Background())
	return j
}

func (j *job) stop() { j.cancel() }

func (j *job) currentPlan() plan {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.plan
}

// outcome is how one child run ended.
type outcome int

const (
	outEnded   outcome = iota // the stream ended or the job was stopped: no restart
	outChanged                // the source's tracks changed: start again at once
	outFailed                 // the child died or failed: restart after the backoff
)

// run supervises children until the stream ends or the job is stopped.
func (j *job) run() {
	defer close(j.done)
	defer j.cancel()
	defer func() {
		// The renditions end with the transcoder.
		j.mu.Lock()
		names := make([]string, 0, len(j.published))
		for n := range j.published {
			names = append(names, n)
		}
		j.mu.Unlock()
		for _, n := range names {
			j.m.Hub.End(n)
		}
		j.log.Info("transcoder stopped")
	}()
	backoff := j.m.RestartMin
	for {
		start := time.Now()
		out, produced, err := j.runOnce()
		switch out {
		case outEnded:
			return
		case outChanged:
			// A new child at once for a new set of tracks, unless the last one ran only
			// briefly: a publisher that keeps changing its tracks (sequence headers) must
			// not make onair start an ffmpeg per change.
			if time.Since(start) < j.m.RestartMin && !j.sleep(j.m.RestartMin) {
				return
			}
			continue
		}
		j.mu.Lock()
		fallback := !produced && j.encoder != EncoderX264
		if fallback {
			j.log.Warn("hardware encoder failed, falling back to libx264", "encoder", j.encoder, "err", err)
			j.encoder, j.preset = EncoderX264, "veryfast"
		} else {
			j.restarts++
		}
		j.mu.Unlock()
		if fallback {
			continue
		}
		if time.Since(start) >= stableRun {
			backoff = j.m.RestartMin
		}
		j.log.Warn("transcoder exited, restarting", "err", err, "backoff", backoff)
		if !j.sleep(backoff) {
			return
		}
		backoff = min(backoff*2, j.m.RestartMax)
	}
}

// sleep waits for d, and reports false when the job was stopped meanwhile.
func (j *job) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-j.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// runOnce reads the source from its current tracks on and runs one child. produced
// reports whether the child published any rendition unit.
func (j *job) runOnce() (out outcome, produced bool, err error) {
	src := j.m.Hub.Stream(j.name)
	if src == nil {
		return outEnded, false, nil
	}
	rd, err := src.AddReader("transcode")
	if err != nil {
		return outEnded, false, nil
	}
	defer rd.Close()
	ev, err := rd.Read(j.ctx)
	if err != nil {
		return outEnded, false, nil
	}
	p := makePlan(j.m.Ladder, ev.Tracks)
	j.mu.Lock()
	j.plan = p
	encoder, preset := j.encoder, j.preset
	j.mu.Unlock()
	if len(p.rungs) == 0 {
		j.log.Info("nothing to transcode: passthrough only")
		return j.idle(rd)
	}

	runCtx, runCancel := context.WithCancel(j.ctx)
	defer runCancel()
	readers := make([]*os.File, len(p.rungs))
	writers := make([]*os.File, len(p.rungs))
	defer func() {
		for _, f := range append(readers, writers...) {
			if f != nil {
				_ = f.Close()
			}
		}
	}()
	for i := range p.rungs {
		if readers[i], writers[i], err = os.Pipe(); err != nil {
			return outFailed, false, fmt.Errorf("pipe: %w", err)
		}
	}
	cmd := exec.Command(j.m.path, ffmpegArgs(p, encoder, preset, j.m.VAAPIDevice)...)
	cmd.ExtraFiles = writers
	cmd.Stdout = io.Discard
	stderr := &lineLogger{log: j.log}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return outFailed, false, fmt.Errorf("stdin pipe: %w", err)
	}
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return outFailed, false, fmt.Errorf("start ffmpeg: %w", err)
	}
	for i, w := range writers {
		_ = w.Close()
		writers[i] = nil
	}
	names := make([]string, len(p.rungs))
	for i, r := range p.rungs {
		names[i] = r.Name
	}
	j.mu.Lock()
	j.pid, j.started = cmd.Process.Pid, time.Now()
	j.cpuAt, j.cpuUsed, j.cpuPercent = time.Time{}, 0, 0
	j.mu.Unlock()
	j.log.Info("transcoder started", "pid", cmd.Process.Pid, "renditions", names, "encoder", encoder)

	go func() {
		// A stop kills the child at once, even while feed is blocked writing to it.
		<-runCtx.Done()
		if j.ctx.Err() != nil {
			killGroup(cmd)
		}
	}()
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		runCancel()
		exited <- err
	}()
	var outputs sync.WaitGroup
	var got atomic.Bool
	for i, r := range p.rungs {
		outputs.Add(1)
		go func() {
			defer outputs.Done()
			if err := j.publish(r, readers[i], &got); err != nil {
				j.log.Warn("rendition stopped", "rendition", r.Name, "err", err)
			}
			// Closing our end makes ffmpeg fail on its next write instead of blocking.
			_ = readers[i].Close()
		}()
	}

	out, err = j.feed(runCtx, rd, stdin, ev.Tracks, p)
	_ = stdin.Close()
	var exitErr error
	if out == outEnded && j.ctx.Err() == nil {
		// The stream ended: let the child finish the renditions.
		t := time.NewTimer(stopWait)
		select {
		case exitErr = <-exited:
		case <-t.C:
			killGroup(cmd)
			exitErr = <-exited
		}
		t.Stop()
	} else {
		if out != outFailed {
			killGroup(cmd)
		}
		exitErr = <-exited
	}
	outputs.Wait()
	j.mu.Lock()
	j.pid = 0
	j.mu.Unlock()
	if j.ctx.Err() != nil {
		return outEnded, got.Load(), nil
	}
	if out == outFailed {
		if exitErr != nil {
			err = fmt.Errorf("ffmpeg: %w: %s", exitErr, stderr.last())
		} else if err == nil {
			err = errors.New("ffmpeg exited")
		}
	}
	return out, got.Load(), err
}

// idle waits, with nothing to transcode, for the stream to end or its tracks to change.
func (j *job) idle(rd *hub.Reader) (outcome, bool, error) {
	for {
		ev, err := rd.Read(j.ctx)
		if err != nil {
			return outEnded, false, nil
		}
		if ev.Tracks != nil {
			return outChanged, false, nil
		}
	}
}

// feed writes the source to the child until the stream ends, its tracks change or the
// child exits (ctx is then done).
func (j *job) feed(ctx context.Context, rd *hub.Reader, stdin io.Writer, tracks []*unit.Track, p plan) (outcome, error) {
	in, err := newTSInput(stdin, tracks, p)
	if err != nil {
		// Nothing to restart for: the caller closes stdin, so the child sees the end of
		// its input and exits, and the job ends (passthrough only for this stream).
		j.log.Warn("cannot transcode", "err", err)
		return outEnded, nil
	}
	buf := make([]hub.Event, 0, 64)
	for {
		evs, err := rd.ReadBatch(ctx, buf[:0])
		switch {
		case errors.Is(err, hub.ErrStreamEnded):
			_ = in.flush()
			return outEnded, nil
		case err != nil && j.ctx.Err() != nil:
			return outEnded, nil
		case err != nil:
			return outFailed, nil // the child exited
		}
		for _, ev := range evs {
			if ev.Tracks != nil {
				return outChanged, nil
			}
			if ev.Unit == nil {
				continue
			}
			if err := in.write(ev.Unit); err != nil {
				return outFailed, fmt.Errorf("write to ffmpeg: %w", err)
			}
		}
		if err := in.flush(); err != nil {
			return outFailed, fmt.Errorf("write to ffmpeg: %w", err)
		}
	}
}

// publish reads one rendition from the child and publishes it into the hub.
func (j *job) publish(r planned, rd io.Reader, got *atomic.Bool) error {
	name := hub.DerivedName(j.name, r.Name)
	var pub *hub.Publisher
	defer func() {
		if pub != nil {
			pub.Close() // a restarted child continues the stream inside the hub's grace window
		}
	}()
	return readTS(rd, func(u *unit.Unit, tracks []*unit.Track) error {
		if pub == nil {
			var err error
			if pub, err = j.m.Hub.PublishFrom(name, tracks, hub.SourceDerived); err != nil {
				return err
			}
			j.mu.Lock()
			j.published[name] = true
			j.mu.Unlock()
		}
		got.Store(true)
		return pub.WriteUnit(u)
	})
}

func (j *job) status() Status {
	j.mu.Lock()
	defer j.mu.Unlock()
	st := Status{Channel: j.name, PID: j.pid, Encoder: j.encoder, Restarts: j.restarts, CPUPercent: -1}
	for _, r := range j.plan.rungs {
		st.Renditions = append(st.Renditions, r.Name)
	}
	if j.pid == 0 {
		return st
	}
	now := time.Now()
	st.Uptime = now.Sub(j.started)
	used, ok := cpuTime(j.pid)
	if !ok {
		return st
	}
	if j.cpuAt.IsZero() {
		// First sample: the average since the child started.
		j.cpuAt, j.cpuUsed = j.started, 0
	}
	if dt := now.Sub(j.cpuAt); dt >= 500*time.Millisecond {
		j.cpuPercent = 100 * float64(used-j.cpuUsed) / float64(dt)
		j.cpuAt, j.cpuUsed = now, used
	}
	st.CPUPercent = j.cpuPercent
	return st
}

// lineLogger logs ffmpeg's stderr line by line at Debug and keeps the last line for errors.
type lineLogger struct {
	log     *slog.Logger
	mu      sync.Mutex
	partial []byte
	lastMsg string
}

func (l *lineLogger) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(bytes.TrimRight(l.partial[:i], "\r"))
		l.partial = l.partial[i+1:]
		if line != "" {
			l.lastMsg = line
			l.log.Debug("ffmpeg", "line", line)
		}
	}
	if len(l.partial) > 4096 {
		l.partial = l.partial[:0]
	}
	return len(b), nil
}

func (l *lineLogger) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastMsg
}
