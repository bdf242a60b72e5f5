package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/onair/onair/internal/bus"
	"github.com/onair/onair/internal/chat"
	"github.com/onair/onair/internal/cluster"
	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/relay"
)

// clusterNode is what a node adds in cluster mode (config nats set): the NATS bus and
// the stream directory. Nil on a single node.
type clusterNode struct {
	bus  *bus.NATS
	dir  *cluster.Directory
	ends bus.Subscription // requests to end a stream published here
	wg   sync.WaitGroup
}

// endTopic carries requests to end a channel's stream on its origin node (admin "end
// stream", key rotation and bans on any node).
const endTopic = "cluster.end"

// openBus opens the bus: in process on a single node, on NATS in a cluster.
func (s *Server) openBus() error {
	if !s.Config.Clustered() {
		s.bus = bus.NewLocal()
		return nil
	}
	nb, err := bus.NewNATS(s.Config.NATS, bus.NATSOptions{
		Name:          "onair " + s.Config.Node,
		SubjectPrefix: s.Config.Cluster + ".bus",
		Logger:        s.Logger.With("component", "bus"),
	})
	if err != nil {
		return err
	}
	s.bus = nb
	s.cluster = &clusterNode{bus: nb}
	return nil
}

// eventBus is the bus of the webhook dispatcher, which must send each event once in the
// whole cluster: on a cluster node it sees live/offline and follow events only when
// they happened on this node (NATS.Own), and the chat of every node, since the
// dispatcher follows a channel's chat only while it saw the channel go live, which
// happens on its origin node alone.
func (s *Server) eventBus() bus.Bus {
	if s.cluster != nil {
		return webhookBus{s.cluster.bus}
	}
	return s.bus
}

type webhookBus struct{ *bus.NATS }

func (w webhookBus) Subscribe(topic string, buffer int) (bus.Subscription, error) {
	if strings.HasPrefix(topic, chat.TopicPrefix) {
		return w.NATS.Subscribe(topic, buffer)
	}
	return w.NATS.Own().Subscribe(topic, buffer)
}

// startCluster starts the stream directory and wires it in: publishing claims the
// channel cluster-wide, pages and the API list the whole cluster's streams. It runs
// after the web server is built and before RTMP accepts publishers.
func (s *Server) startCluster(ctx context.Context) error {
	if s.cluster == nil {
		return nil
	}
	c := s.Config
	local := s.web.Live
	d := &cluster.Directory{
		Conn:          s.cluster.bus.Conn(),
		Self:          cluster.Origin{Node: c.Node, RTMPAddr: c.AdvertiseRTMP, HTTPAddr: c.AdvertiseHTTP},
		Bucket:        c.Cluster + "_streams",
		SubjectPrefix: c.Cluster + ".cluster",
		Report:        func() cluster.Report { return s.clusterReport(local) },
		Owns:          func(ch string) bool { st := s.hub.Stream(ch); return st != nil && st.Source() == hub.SourceIngest },
		OnOrphan:      s.onOrphan,
		OnLost:        func(ch string, _ cluster.Origin) { s.hub.End(ch) },
		Logger:        s.Logger.With("component", "cluster"),
	}
	if err := d.Start(ctx); err != nil {
		return fmt.Errorf("start cluster directory: %w", err)
	}
	s.cluster.dir = d
	s.web.Live = d
	if _, err := s.startRelay(relayLocator{d}, c.Node); err != nil {
		return err
	}
	if err := s.startClusterEnds(); err != nil {
		return err
	}

	// A key is live on one node of the cluster at most: the claim comes after every
	// other check, so a refused publish leaves no claim behind.
	prev := s.rtmp.AuthorizePublish
	s.rtmp.AuthorizePublish = func(ctx context.Context, channel, remoteAddr string) error {
		if prev != nil {
			if err := prev(ctx, channel, remoteAddr); err != nil {
				return err
			}
		}
		if st := s.hub.Stream(channel); st != nil && st.Source() != hub.SourceIngest {
			// Still relayed here from its old origin: the relay ends on its own, then the
			// broadcaster's retry goes through (the hub would refuse it meanwhile).
			return onair.Errorf(onair.ECONFLICT, "The channel is still relayed from another node.")
		}
		return d.Claim(ctx, channel)
	}
	s.Logger.Info("cluster node started", "node", c.Node, "advertise_rtmp", c.AdvertiseRTMP, "advertise_http", c.AdvertiseHTTP)
	return nil
}

// startClusterEnds makes the web's "end stream" reach the channel's origin node.
func (s *Server) startClusterEnds() error {
	sub, err := s.bus.Subscribe(endTopic, 64)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", endTopic, err)
	}
	s.cluster.ends = sub
	s.cluster.wg.Go(func() {
		for ev := range sub.C() {
			if st := s.hub.Stream(ev.Channel); st != nil && st.Source() == hub.SourceIngest {
				s.Logger.Info("stream ended on request of another node", "channel", ev.Channel)
				s.hub.End(ev.Channel)
			}
		}
	})
	local := s.web.EndStream
	s.web.EndStream = func(channel string) bool {
		if st := s.hub.Stream(channel); st != nil && st.Source() == hub.SourceIngest {
			return local(channel)
		}
		if _, live := s.cluster.dir.LiveStream(channel); !live {
			return false
		}
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		defer cancel()
		if err := s.bus.Publish(ctx, endTopic, bus.Event{Type: endTopic, Channel: channel}); err != nil {
			s.Logger.Warn("ask the origin to end a stream", "channel", channel, "err", err)
			return false
		}
		return true
	}
	return nil
}

// relayLocator adapts the stream directory to the relay's Locator.
type relayLocator struct{ d *cluster.Directory }

func (l relayLocator) Locate(ctx context.Context, channel string) (relay.Origin, bool, error) {
	o, ok, err := l.d.Locate(ctx, channel)
	if !ok || err != nil {
		return relay.Origin{}, false, err
	}
	return relay.Origin{Node: o.Node, RTMPAddr: o.RTMPAddr, HTTPAddr: "http://" + o.HTTPAddr}, true, nil
}

// clusterReport is this node's heartbeat: its published streams and every stream's
// viewers here.
func (s *Server) clusterReport(local onair.LiveDirectory) cluster.Report {
	r := cluster.Report{Viewers: make(map[string]int)}
	for _, st := range s.hub.Streams() {
		ls, ok := local.LiveStream(st.Name())
		if !ok {
			continue
		}
		r.Viewers[ls.Channel] = ls.Viewers
		if st.Source() == hub.SourceIngest {
			r.Streams = append(r.Streams, ls)
		}
	}
	return r
}

// clusterStreamEnded releases the claim of a stream that ended here (unless it went live
// here again meanwhile).
func (s *Server) clusterStreamEnded(ctx context.Context, channel string) {
	if s.cluster == nil || s.cluster.dir == nil || s.hub.Stream(channel) != nil {
		return
	}
	if err := s.cluster.dir.Release(ctx, channel); err != nil {
		s.Logger.Warn("release stream directory claim", "channel", channel, "err", err)
	}
}

// publishLive publishes a live or offline event on the bus.
func (s *Server) publishLive(ctx context.Context, channel string, live bool) {
	typ := bus.TypeOffline
	if live {
		typ = bus.TypeLive
	}
	if err := s.bus.Publish(ctx, "live", bus.Event{Type: typ, Channel: channel}); err != nil && !errors.Is(err, bus.ErrClosed) {
		s.Logger.Warn("publish live event", "channel", channel, "err", err)
	}
}

// closeCluster runs after the hub closed: it releases this node's claims (their streams
// ended; the offline events of the event loop may not have run) and stops the directory.
func (s *Server) closeCluster() {
	if s.cluster == nil || s.cluster.dir == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, ch := range s.cluster.dir.Claims() {
		if err := s.cluster.dir.Release(ctx, ch); err != nil {
			s.Logger.Warn("release stream directory claim", "channel", ch, "err", err)
			continue
		}
		s.publishLive(ctx, ch, false)
	}
	s.cluster.dir.Close()
	if s.cluster.ends != nil {
		s.cluster.ends.Close()
	}
	s.cluster.wg.Wait()
}

// closeBus closes the bus (and with it the NATS connection).
func (s *Server) closeBus() {
	switch b := s.bus.(type) {
	case *bus.Local:
		b.Close()
	case *bus.NATS:
		b.Close()
	}
}

// recordingNode is the node name stored with the recordings made here: config node in a
// cluster, "" on a single node (where a node name, if set, means nothing).
func (s *Server) recordingNode() string {
	if !s.Config.Clustered() {
		return ""
	}
	return s.Config.Node
}

// onOrphan handles a channel whose origin node died, once per channel in the cluster
// (this node won the sweep of its claim): the channel goes offline, and the recording
// the dead node left running is finished here (in the background) when the nodes share
// the recordings' storage ([recordings_s3]). With local storage the media are on the dead
// node's disk: its recordings wait for its restart under the same node name
// (Recorder.Start repairs them).
func (s *Server) onOrphan(ctx context.Context, channel string, origin cluster.Origin) {
	s.publishLive(ctx, channel, false)
	if s.Config.RecordingsS3.Enabled() {
		s.recorder.RepairDead(origin.Node, channel)
	}
}
