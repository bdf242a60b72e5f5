package rtmp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/message"

	"github.com/onair/onair/internal/hub"
)

// RelayApp is the RTMP application of relay pulls: another node plays
// rtmp://HOST/relay/{channel}. Such a play is served from this node's own streams only,
// never relayed again, so that relays do not chain or loop when directories disagree.
// Relay connections carry no secret: live channels are public to play.
const RelayApp = "relay"

// errServerClosed is returned by Pull when the server is closed or not started.
var errServerClosed = errors.New("rtmp server closed")

// playStream returns the live stream a play command asks for. A relay pull gets this
// node's streams only; any other player may have Hub.Lookup relay the stream from its
// origin node first.
func (s *Server) playStream(u *url.URL, name string) *hub.Stream {
	if appName(u) == RelayApp {
		return s.Hub.Stream(name)
	}
	return s.Hub.Lookup(s.ctx, name)
}

// playerKind is the hub reader kind of a player: "relay" for another node's relay pull
// (not a viewer: viewer counts take the "rtmp" readers), else "rtmp".
func playerKind(u *url.URL) string {
	if appName(u) == RelayApp {
		return RelayApp
	}
	return "rtmp"
}

// appName returns the first path element of a publish/play URL.
func appName(u *url.URL) string {
	if u == nil {
		return ""
	}
	app, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	return app
}

// Pull plays channel from the RTMP server at addr ("host:port", the channel's origin
// node) and publishes it into Hub under the same name as a hub.SourceRelay stream, so
// that this node's outputs serve it. The received messages go through the same
// conversion as a publisher's (tracks from the metadata and sequence headers, units
// with their parameter sets), and the socket through the same chunk guard.
//
// Pull returns when ctx ends (ctx's error), when the origin says the stream ended (nil),
// or when the connection fails or closes without that (the origin died). The local stream then ends at once, without a grace
// window: the origin keeps its own, and a reconnect there continues through this pull.
// onLive, when set, is called once, when the local stream exists with the first media.
//
// The pull counts as one of the server's connections: Close ends it, and Conns lists it
// as publishing channel.
func (s *Server) Pull(ctx context.Context, addr, channel string, onLive func()) (err error) {
	if s.ctx == nil {
		return errServerClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	var c *conn
	client := &gortmplib.Client{
		URL: &url.URL{Scheme: "rtmp", Host: addr, Path: "/" + RelayApp, Fragment: channel},
		DialContext: func(dctx context.Context, network, address string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(dctx, network, address)
			if err != nil {
				return nil, err
			}
			if c != nil || !s.addPullConn(nc, &c) {
				nc.Close()
				return nil, errServerClosed
			}
			return pullConn{Conn: nc, r: c.guard, w: deadlineWriter{s: s, c: c, timeout: s.WriteTimeout}}, nil
		},
	}
	if err := client.Initialize(ctx); err != nil {
		if c != nil {
			s.endConn(c, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("relay pull: %w", err)
	}
	closeOnCancel := context.AfterFunc(ctx, func() { c.nc.Close() })
	defer closeOnCancel()
	defer func() {
		if r := recover(); r != nil {
			s.Logger.Error("connection panicked", "conn_id", c.id, "remote_addr", c.remote,
				"err", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
		s.endConn(c, err)
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case errors.Is(err, errUnpublished):
			err = nil // the origin ended the stream
		case errors.Is(err, io.EOF):
			err = errors.New("relay pull: origin closed the connection")
		case err != nil:
			err = fmt.Errorf("relay pull: %w", err)
		}
	}()

	if !s.claim(channel, c) {
		return errPublisherActive
	}
	defer s.release(channel, c)
	c.stats.setState(ConnPublishing, channel)
	p := &publishSession{s: s, c: c, src: client, channel: channel, source: hub.SourceRelay, onLive: onLive}
	return p.run()
}

// addPullConn registers the outgoing connection nc of a pull as one of the server's, like an
// accepted one (counted by the WaitGroup until endConn). It fails once the server is
// closed.
func (s *Server) addPullConn(nc net.Conn, out **conn) bool {
	c := &conn{id: s.nextID.Add(1), nc: nc, remote: nc.RemoteAddr().String()}
	c.stats.init(s.Now())
	c.guard = newChunkGuard(countingReader{s: s, c: c}, uint32(s.MaxMessageSize))
	c.guard.before = func() { nc.SetReadDeadline(time.Now().Add(s.ReadTimeout)) } //nolint:errcheck
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	*out = c
	return true
}

// pullConn is the socket of a pull as gortmplib's client sees it: reads go through the
// chunk guard (limits and read deadlines, as for a publisher), writes through a
// deadlineWriter.
type pullConn struct {
	net.Conn
	r io.Reader
	w io.Writer
}

func (pc pullConn) Read(b []byte) (int, error)  { return pc.r.Read(b) }
func (pc pullConn) Write(b []byte) (int, error) { return pc.w.Write(b) }

// playEnded reports whether an onStatus command says the played stream ended
// (NetStream.Play.UnpublishNotify or NetStream.Play.Stop, as player.writeEnd sends).
func playEnded(m *message.CommandAMF0) bool {
	for _, a := range m.Arguments {
		if o, ok := a.(amf0.Object); ok {
			code, _ := o.GetString("code")
			return code == "NetStream.Play.UnpublishNotify" || code == "NetStream.Play.Stop"
		}
	}
	return false
}
