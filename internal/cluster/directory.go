// Package cluster is the stream directory of a cluster of onair nodes sharing NATS: which
// node a channel is live on (its origin), which nodes are alive, and what every node
// reports about its streams and viewers.
//
// Claims live in a JetStream key-value bucket (key: channel, value: the origin), taken
// with Create and removed with a revision-checked Delete, so at most one node holds a
// channel. Liveness comes from heartbeats on core NATS: every node publishes one each
// HeartbeatInterval, with its origin streams and per-channel viewer counts. A node
// silent for DeadAfter is dead: the surviving nodes delete its claims (the one whose
// revision-checked Delete succeeds reports the channel offline, so it happens once).
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/onair/onair/internal/onair"
)

// Defaults of a Directory.
const (
	DefaultBucket            = "onair_streams"
	DefaultSubjectPrefix     = "onair.cluster"
	DefaultHeartbeatInterval = time.Second
	DefaultDeadAfter         = 3 * time.Second
	// DefaultClaimGrace is how long a claim may exist without its stream going live on the
	// claiming node (a publisher that never sent its tracks) before it is released.
	DefaultClaimGrace = 30 * time.Second
	// DefaultSweepInterval is how often the claims are checked when no node died.
	DefaultSweepInterval = 5 * time.Second
)

// ErrClaimed is returned by Claim when the channel is live on another node.
var ErrClaimed = onair.Errorf(onair.ECONFLICT, "The channel is live on another node.")

// Origin is the node a channel is live on, and where other nodes reach it.
type Origin struct {
	Node     string    `json:"node"`
	RTMPAddr string    `json:"rtmp"`
	HTTPAddr string    `json:"http"`
	Since    time.Time `json:"since"`
}

// Report is what a node tells the others in each heartbeat.
type Report struct {
	// Streams are the streams published on the node (it is their origin), with the
	// node's own viewers.
	Streams []onair.LiveStream `json:"streams,omitempty"`
	// Viewers are the node's viewers per channel, of origin and relayed streams alike.
	Viewers map[string]int `json:"viewers,omitempty"`
}

type heartbeat struct {
	Node     string `json:"node"`
	RTMPAddr string `json:"rtmp"`
	HTTPAddr string `json:"http"`
	Report
}

// Directory is this node's view of the cluster. Set the fields, then Start; Close stops it.
type Directory struct {
	// Conn is the NATS connection (shared with the bus). Required.
	Conn *nats.Conn
	// Self is this node: its name and advertised addresses. Required.
	Self Origin
	// Bucket is the key-value bucket of claims. Default: DefaultBucket.
	Bucket string
	// SubjectPrefix prefixes the heartbeat subject. Default: DefaultSubjectPrefix.
	SubjectPrefix string
	// HeartbeatInterval and DeadAfter: see the package doc.
	HeartbeatInterval time.Duration
	DeadAfter         time.Duration
	// ClaimGrace: see DefaultClaimGrace.
	ClaimGrace time.Duration
	// SweepInterval is how often every claim is checked (also right after a node dies).
	// Default: DefaultSweepInterval.
	SweepInterval time.Duration

	// Report returns this node's streams and viewers; called once per heartbeat and by
	// LiveStreams. Required.
	Report func() Report
	// Owns reports whether the channel is live on this node (published here, maybe in
	// its reconnect grace window). Required.
	Owns func(channel string) bool
	// OnOrphan is called (from the directory's loop) for a channel whose origin died and
	// whose claim this node removed: it is offline now. Once per channel in the cluster.
	OnOrphan func(ctx context.Context, channel string, origin Origin)
	// OnLost is called when a channel live here is claimed by another node (after a
	// network partition): the local stream should end.
	OnLost func(channel string, by Origin)
	// Logger receives the logs. Default: slog.Default().
	Logger *slog.Logger

	kv     jetstream.KeyValue
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sub    *nats.Subscription

	mu sync.Mutex
	// listening is since when this node has heard the cluster without a break (set at
	// Start and while disconnected): it judges no node dead until it has listened for
	// DeadAfter, so a node back from a NATS outage does not take every other node for dead.
	listening time.Time
	nodes     map[string]*nodeState
	claims    map[string]claim // claims made by this node, by channel
}

type nodeState struct {
	hb       heartbeat
	lastSeen time.Time
}

type claim struct {
	rev uint64
	at  time.Time
}

// Start creates (or opens) the bucket, subscribes to heartbeats and starts the loop that
// sends them and watches the other nodes.
func (d *Directory) Start(ctx context.Context) error {
	if d.Conn == nil || d.Self.Node == "" || d.Report == nil || d.Owns == nil {
		return errors.New("cluster directory: conn, self, report and owns are required")
	}
	setDefault(&d.HeartbeatInterval, DefaultHeartbeatInterval)
	setDefault(&d.DeadAfter, DefaultDeadAfter)
	setDefault(&d.ClaimGrace, DefaultClaimGrace)
	setDefault(&d.SweepInterval, DefaultSweepInterval)
	if d.Bucket == "" {
		d.Bucket = DefaultBucket
	}
	if d.SubjectPrefix == "" {
		d.SubjectPrefix = DefaultSubjectPrefix
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	js, err := jetstream.New(d.Conn)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d.kv, err = js.CreateOrUpdateKeyValue(cctx, jetstream.KeyValueConfig{
		Bucket:      d.Bucket,
		Description: "onair stream directory: channel -> origin node",
		History:     1,
	})
	if err != nil {
		return fmt.Errorf("open stream directory bucket: %w", err)
	}
	d.nodes = make(map[string]*nodeState)
	d.claims = make(map[string]claim)
	d.listening = time.Now()
	d.sub, err = d.Conn.Subscribe(d.hbSubject(), d.onHeartbeat)
	if err != nil {
		return fmt.Errorf("subscribe to heartbeats: %w", err)
	}
	d.ctx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	d.wg.Add(1)
	go d.run()
	return nil
}

// Close stops the loop. Claims stay: the streams' ends release them (the app closes the
// hub first), and a node that vanishes has them removed by the others.
func (d *Directory) Close() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	_ = d.sub.Unsubscribe()
	d.wg.Wait()
	d.cancel = nil
}

func (d *Directory) hbSubject() string { return d.SubjectPrefix + ".heartbeat" }

func (d *Directory) onHeartbeat(m *nats.Msg) {
	var hb heartbeat
	if err := json.Unmarshal(m.Data, &hb); err != nil || hb.Node == "" {
		d.Logger.Warn("bad cluster heartbeat", "err", err)
		return
	}
	if hb.Node == d.Self.Node {
		return // our own (when the connection echoes), or a second node with our name
	}
	d.mu.Lock()
	n := d.nodes[hb.Node]
	if n == nil {
		n = &nodeState{}
		d.nodes[hb.Node] = n
		d.Logger.Info("cluster node joined", "node", hb.Node)
	}
	n.hb, n.lastSeen = hb, time.Now()
	d.mu.Unlock()
}

// run sends heartbeats and judges the other nodes. It never waits on JetStream: the
// sweeps run in their own goroutine, so a slow or unreachable JetStream never delays a
// heartbeat (which would make the others take this node for dead).
func (d *Directory) run() {
	defer d.wg.Done()
	t := time.NewTicker(d.HeartbeatInterval)
	defer t.Stop()
	sweepNow := make(chan struct{}, 1)
	d.wg.Add(1)
	go d.runSweeps(sweepNow)
	d.beat()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		if !d.Conn.IsConnected() {
			d.mu.Lock()
			d.listening = time.Now()
			d.mu.Unlock()
		}
		d.beat()
		if len(d.expire()) > 0 {
			select {
			case sweepNow <- struct{}{}:
			default:
			}
		}
	}
}

// runSweeps sweeps every SweepInterval, and at once when a node died.
func (d *Directory) runSweeps(now <-chan struct{}) {
	defer d.wg.Done()
	t := time.NewTicker(d.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		case <-now:
		}
		if d.Conn.IsConnected() {
			d.sweep()
		}
	}
}

// beat publishes this node's heartbeat.
func (d *Directory) beat() {
	hb := heartbeat{Node: d.Self.Node, RTMPAddr: d.Self.RTMPAddr, HTTPAddr: d.Self.HTTPAddr, Report: d.Report()}
	data, err := json.Marshal(hb)
	if err != nil {
		d.Logger.Warn("encode heartbeat", "err", err)
		return
	}
	if err := d.Conn.Publish(d.hbSubject(), data); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		d.Logger.Warn("send heartbeat", "err", err)
	}
}

// expire forgets the nodes silent for DeadAfter and returns their names.
func (d *Directory) expire() []string {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.Sub(d.listening) <= d.DeadAfter {
		return nil
	}
	var dead []string
	for name, n := range d.nodes {
		if now.Sub(n.lastSeen) > d.DeadAfter {
			delete(d.nodes, name)
			dead = append(dead, name)
			d.Logger.Warn("cluster node dead", "node", name, "silent", now.Sub(n.lastSeen).Round(time.Millisecond))
		}
	}
	return dead
}

// alive reports whether a node is alive as far as this node knows. Until this node has
// listened for DeadAfter (after Start or a NATS outage), every node counts as alive.
func (d *Directory) alive(node string) bool {
	if node == d.Self.Node {
		return true
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.nodes[node]; ok {
		return true
	}
	return time.Since(d.listening) <= d.DeadAfter
}

// sweep goes over every claim: a dead node's claim is removed (orphan); this node's
// stale claims are released, and its streams' missing claims restored.
func (d *Directory) sweep() {
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	keys, err := d.kv.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		if d.ctx.Err() == nil {
			d.Logger.Warn("list stream directory", "err", err)
		}
		return
	}
	owner := make(map[string]string, len(keys))
	for _, ch := range keys {
		e, o, err := d.get(ctx, ch)
		if err != nil || e == nil {
			continue
		}
		owner[ch] = o.Node
		switch {
		case o.Node == d.Self.Node:
			if d.Owns(ch) {
				continue
			}
			d.mu.Lock()
			c, mine := d.claims[ch]
			d.mu.Unlock()
			if mine && c.rev == e.Revision() && time.Since(c.at) < d.ClaimGrace {
				continue // claimed, waiting for the publisher's tracks
			}
			d.orphan(ctx, ch, e.Revision(), o) // left from before a restart, or never went live
		case !d.alive(o.Node):
			d.orphan(ctx, ch, e.Revision(), o)
		}
	}
	// Streams live here whose claims vanished (this node was cut off and declared dead):
	// claim them again, or give them up when another node has taken the channel.
	for _, ls := range d.Report().Streams {
		if owner[ls.Channel] == d.Self.Node || !d.Owns(ls.Channel) {
			continue
		}
		if err := d.Claim(ctx, ls.Channel); errors.Is(err, ErrClaimed) {
			by, _, _ := d.Locate(ctx, ls.Channel)
			d.Logger.Warn("channel taken by another node; ending it here", "channel", ls.Channel, "by", by.Node)
			if d.OnLost != nil {
				d.OnLost(ls.Channel, by)
			}
		} else if err == nil {
			d.Logger.Info("stream directory claim restored", "channel", ls.Channel)
		}
	}
}

// orphan removes a claim whose origin is gone; when this node's delete wins, OnOrphan
// runs.
func (d *Directory) orphan(ctx context.Context, ch string, rev uint64, o Origin) {
	if err := d.kv.Delete(ctx, ch, jetstream.LastRevision(rev)); err != nil {
		return // another node was first, or the channel was claimed again
	}
	d.mu.Lock()
	if c, ok := d.claims[ch]; ok && c.rev == rev {
		delete(d.claims, ch)
	}
	d.mu.Unlock()
	d.Logger.Info("stream offline: its origin is gone", "channel", ch, "origin", o.Node)
	if d.OnOrphan != nil {
		d.OnOrphan(ctx, ch, o)
	}
}

// get reads a claim; a missing one is (nil, zero, nil).
func (d *Directory) get(ctx context.Context, ch string) (jetstream.KeyValueEntry, Origin, error) {
	e, err := d.kv.Get(ctx, ch)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, Origin{}, nil
	}
	if err != nil {
		return nil, Origin{}, fmt.Errorf("read stream directory: %w", err)
	}
	var o Origin
	if err := json.Unmarshal(e.Value(), &o); err != nil {
		return nil, Origin{}, fmt.Errorf("read stream directory: bad entry for %q: %w", ch, err)
	}
	return e, o, nil
}

// Claim makes this node the channel's origin. It succeeds when the channel is free, is
// already this node's, or its origin is dead (the claim is taken over); it fails with
// ErrClaimed when another live node holds it.
func (d *Directory) Claim(ctx context.Context, ch string) error {
	val := d.Self
	val.Since = time.Now().UTC()
	data, err := json.Marshal(val)
	if err != nil {
		return err
	}
	for range 3 {
		rev, err := d.kv.Create(ctx, ch, data)
		if err == nil {
			d.mu.Lock()
			d.claims[ch] = claim{rev: rev, at: time.Now()}
			d.mu.Unlock()
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("claim channel: %w", err)
		}
		e, o, err := d.get(ctx, ch)
		if err != nil {
			return err
		}
		switch {
		case e == nil:
			continue // deleted meanwhile: create again
		case o.Node == d.Self.Node:
			rev, err := d.kv.Update(ctx, ch, data, e.Revision())
			if err != nil {
				continue
			}
			d.mu.Lock()
			d.claims[ch] = claim{rev: rev, at: time.Now()}
			d.mu.Unlock()
			return nil
		case d.alive(o.Node):
			return ErrClaimed
		default:
			d.orphan(ctx, ch, e.Revision(), o) // its origin died: take over
		}
	}
	return ErrClaimed
}

// Release gives up this node's claim on the channel (its stream ended). A claim held by
// another node is left alone.
func (d *Directory) Release(ctx context.Context, ch string) error {
	d.mu.Lock()
	delete(d.claims, ch)
	d.mu.Unlock()
	e, o, err := d.get(ctx, ch)
	if err != nil || e == nil || o.Node != d.Self.Node {
		return err
	}
	if err := d.kv.Delete(ctx, ch, jetstream.LastRevision(e.Revision())); err != nil &&
		!errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return fmt.Errorf("release channel: %w", err)
	}
	return nil
}

// Locate returns the channel's origin, and false when it is not live anywhere (or its
// origin is dead). The origin may be this node.
func (d *Directory) Locate(ctx context.Context, ch string) (Origin, bool, error) {
	e, o, err := d.get(ctx, ch)
	if err != nil || e == nil || !d.alive(o.Node) {
		return Origin{}, false, err
	}
	return o, true, nil
}

// Claims returns the channels this node claimed and still holds, sorted.
func (d *Directory) Claims() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.claims))
	for ch := range d.claims {
		out = append(out, ch)
	}
	sort.Strings(out)
	return out
}

// Nodes returns the names of the nodes alive now, this one included, sorted.
func (d *Directory) Nodes() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []string{d.Self.Node}
	for name := range d.nodes {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// LiveStreams returns the streams live anywhere in the cluster (this node's from Report,
// the others' from their last heartbeats), each with the viewers of every node summed.
func (d *Directory) LiveStreams() []onair.LiveStream {
	self := d.Report()
	viewers := make(map[string]int, len(self.Viewers))
	for ch, n := range self.Viewers {
		viewers[ch] += n
	}
	streams := append([]onair.LiveStream(nil), self.Streams...)
	d.mu.Lock()
	for _, n := range d.nodes {
		streams = append(streams, n.hb.Streams...)
		for ch, v := range n.hb.Viewers {
			viewers[ch] += v
		}
	}
	d.mu.Unlock()
	seen := make(map[string]bool, len(streams))
	out := streams[:0]
	for _, ls := range streams {
		if seen[ls.Channel] {
			continue // two origins for a moment (a partition healing): show one
		}
		seen[ls.Channel] = true
		ls.Viewers = viewers[ls.Channel]
		out = append(out, ls)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	return out
}

// LiveStream returns one stream of LiveStreams.
func (d *Directory) LiveStream(ch string) (onair.LiveStream, bool) {
	for _, ls := range d.LiveStreams() {
		if ls.Channel == ch {
			return ls, true
		}
	}
	return onair.LiveStream{}, false
}

func setDefault(p *time.Duration, v time.Duration) {
	if *p <= 0 {
		*p = v
	}
}
