// Package relay is the edge side of a cluster: when a viewer asks this node for a
// channel that is live on another node (its origin), the Puller pulls the stream from
// the origin into the local hub, where every output serves it as if it were published
// here. The pull starts with the first viewer, stops once the last one has been gone
// for a linger time, and ends the local stream at once when the origin's stream ends or
// the origin dies.
//
// The package decides when to pull; how is a PullFunc that app wires (the RTMP server's
// Pull), so relay imports no protocol package.
package relay

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/onair/onair/internal/hub"
)

// Defaults of the Puller fields.
const (
	DefaultLinger        = 10 * time.Second
	DefaultStartTimeout  = 5 * time.Second
	DefaultCheckInterval = time.Second
)

// Origin is where a channel is live: the node's name and the addresses other nodes pull
// from.
type Origin struct {
	// Node is the origin node's name.
	Node string
	// RTMPAddr is the node's RTMP address as "host:port".
	RTMPAddr string
	// HTTPAddr is the node's HTTP base URL.
	HTTPAddr string
}

// Locator finds the origin of a live channel (the cluster's stream directory).
type Locator interface {
	// Locate returns the node where channel is live; ok is false when it is live
	// nowhere. An error means the directory could not be asked.
	Locate(ctx context.Context, channel string) (origin Origin, ok bool, err error)
}

// PullFunc pulls channel from origin into the local hub as a hub.SourceRelay stream of
// the same name. It calls live once, when the local stream exists, and returns when ctx
// ends, the stream ends at the origin, or the connection fails; the local stream has
// ended by then. A nil error means the origin ended the stream.
type PullFunc func(ctx context.Context, origin Origin, channel string, live func()) error

// Puller pulls streams that are live on other nodes, on demand. Its Ensure method is
// the hub's Registry.Locate hook.
type Puller struct {
	// Hub is the local registry the pulled streams are published to. Required.
	Hub *hub.Registry
	// Locator finds a channel's origin. Required.
	Locator Locator
	// Pull moves the media. Required.
	Pull PullFunc
	// Node is this node's name: a channel the Locator places here is not pulled.
	Node string
	// Linger is how long a pulled stream stays without any reader before the pull stops.
	// Default: 10 s.
	Linger time.Duration
	// StartTimeout bounds the wait for a pulled stream to go live (Ensure waits at most
	// that long; a pull that is not live by then stops). Default: 5 s.
	StartTimeout time.Duration
	// CheckInterval is how often a pull looks at its stream's readers. Default: 1 s.
	CheckInterval time.Duration
	// Logger receives lifecycle logs. Default: slog.Default().
	Logger *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	pulls  map[string]*pull
	closed bool
}

// pull is one channel being pulled (or located). Its channels close in that order:
// live (maybe never), stopping, done.
type pull struct {
	channel  string
	origin   Origin
	live     chan struct{}
	stopping chan struct{}
	done     chan struct{}
	cancel   context.CancelFunc
	liveOnce sync.Once
	stopOnce sync.Once
}

// Start validates the fields and applies the defaults.
func (p *Puller) Start() error {
	switch {
	case p.Hub == nil:
		return errors.New("relay: hub is required")
	case p.Locator == nil:
		return errors.New("relay: locator is required")
	case p.Pull == nil:
		return errors.New("relay: pull is required")
	}
	if p.Linger <= 0 {
		p.Linger = DefaultLinger
	}
	if p.StartTimeout <= 0 {
		p.StartTimeout = DefaultStartTimeout
	}
	if p.CheckInterval <= 0 {
		p.CheckInterval = DefaultCheckInterval
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.pulls = make(map[string]*pull)
	return nil
}

// Close stops every pull (their local streams end) and waits for them.
func (p *Puller) Close() {
	p.mu.Lock()
	if p.closed || p.pulls == nil {
		p.closed = true
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}

// Ensure makes channel live on this node when it is live on another one: it starts a
// pull from the channel's origin (one per channel, whatever the number of concurrent
// callers) and waits until the local stream exists, at most StartTimeout. It reports
// whether the stream is live here. It matches hub.Registry.Locate.
func (p *Puller) Ensure(ctx context.Context, channel string) bool {
	if channel == "" {
		return false
	}
	timer := time.NewTimer(p.StartTimeout)
	defer timer.Stop()
	for {
		pl := p.get(channel)
		if pl == nil {
			return false
		}
		select {
		case <-pl.live:
			select {
			case <-pl.stopping:
				// The pull is on its way out (no viewers for Linger): let it finish,
				// then start another one.
			default:
				return p.Hub.Stream(channel) != nil
			}
		case <-pl.done:
			return false
		case <-ctx.Done():
			return false
		case <-timer.C:
			return false
		}
		select {
		case <-pl.done:
		case <-ctx.Done():
			return false
		case <-timer.C:
			return false
		}
	}
}

// get returns the channel's pull, starting one when there is none.
func (p *Puller) get(channel string) *pull {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.pulls == nil {
		return nil
	}
	pl := p.pulls[channel]
	if pl == nil {
		pl = &pull{
			channel:  channel,
			live:     make(chan struct{}),
			stopping: make(chan struct{}),
			done:     make(chan struct{}),
		}
		p.pulls[channel] = pl
		p.wg.Add(1)
		go p.run(pl)
	}
	return pl
}

// Pulls returns the origins of the channels being pulled, by channel.
func (p *Puller) Pulls() map[string]Origin {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]Origin, len(p.pulls))
	for ch, pl := range p.pulls {
		select {
		case <-pl.live:
			out[ch] = pl.origin
		default:
		}
	}
	return out
}

// run locates the channel and pulls it until it ends or has no viewers for Linger.
func (p *Puller) run(pl *pull) {
	defer p.wg.Done()
	defer func() {
		pl.stop()
		p.mu.Lock()
		if p.pulls[pl.channel] == pl {
			delete(p.pulls, pl.channel)
		}
		p.mu.Unlock()
		close(pl.done)
	}()
	log := p.Logger.With("channel", pl.channel)

	lctx, cancel := context.WithTimeout(p.ctx, p.StartTimeout)
	origin, ok, err := p.Locator.Locate(lctx, pl.channel)
	cancel()
	switch {
	case err != nil:
		log.Warn("relay locate failed", "err", err)
		return
	case !ok:
		return // live nowhere: a viewer asked for an offline channel
	case origin.Node == p.Node && p.Node != "":
		return // the directory says here, but the hub has no such stream (it just ended)
	case origin.RTMPAddr == "":
		log.Warn("relay origin has no rtmp address", "node", origin.Node)
		return
	}
	pl.origin = origin

	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	pl.cancel = cancel
	log = log.With("node", origin.Node)
	started := time.Now()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		p.watch(ctx, pl, log)
	}()
	err = p.Pull(ctx, origin, pl.channel, func() { pl.liveOnce.Do(func() { close(pl.live) }) })
	cancel()
	<-watchDone
	reason := "origin ended the stream"
	switch {
	case errors.Is(err, context.Canceled) && p.ctx.Err() != nil:
		reason = "shutdown"
	case errors.Is(err, context.Canceled):
		reason = "no viewers"
	case err != nil:
		reason = err.Error()
	}
	select {
	case <-pl.live:
		log.Info("relay ended", "duration", time.Since(started).Round(time.Millisecond), "reason", reason)
	default:
		log.Warn("relay failed", "err", reason)
	}
}

// watch stops the pull when it is not live within StartTimeout, or once its stream has
// had no reader for Linger.
func (p *Puller) watch(ctx context.Context, pl *pull, log *slog.Logger) {
	start := time.NewTimer(p.StartTimeout)
	select {
	case <-pl.live:
		start.Stop()
	case <-start.C:
		log.Warn("relay not live in time", "timeout", p.StartTimeout)
		pl.stop()
		return
	case <-ctx.Done():
		start.Stop()
		return
	}
	st := p.Hub.Stream(pl.channel)
	if st == nil {
		return // ended already: Pull returns
	}
	log.Info("relay started")
	tick := time.NewTicker(p.CheckInterval)
	defer tick.Stop()
	lastSeen := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if st.Ended() {
				return
			}
			if readers(st) > 0 {
				lastSeen = now
			} else if now.Sub(lastSeen) >= p.Linger {
				pl.stop()
				return
			}
		}
	}
}

// stop marks the pull as stopping and cancels it.
func (pl *pull) stop() {
	pl.stopOnce.Do(func() {
		close(pl.stopping)
		if pl.cancel != nil {
			pl.cancel()
		}
	})
}

// readers returns the number of readers attached to st.
func readers(st *hub.Stream) int {
	n := 0
	for _, c := range st.Readers() {
		n += c
	}
	return n
}
