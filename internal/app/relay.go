package app

import (
	"context"
	"fmt"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/relay"
)

// startRelay starts the edge relay: when a viewer asks this node for a channel that loc
// places on another node, the channel is pulled over RTMP from that node
// (rtmp.Server.Pull, application "relay") into this node's hub, and every output serves
// it from there (hub.Registry.Lookup asks the relay). node is this node's name.
//
// Call it once s.hub and s.rtmp exist and before the servers take requests (it sets the
// hub's Locate hook). Server.Close stops the relay, after the RTMP server.
func (s *Server) startRelay(loc relay.Locator, node string) (*relay.Puller, error) {
	p := &relay.Puller{
		Hub:     s.hub,
		Locator: loc,
		Node:    node,
		Pull: func(ctx context.Context, origin relay.Origin, channel string, live func()) error {
			return s.rtmp.Pull(ctx, origin.RTMPAddr, channel, live)
		},
		Linger: s.Config.RelayLinger.D(),
		Logger: s.Logger.With("component", "relay"),
	}
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("start relay: %w", err)
	}
	s.relay = p
	// Only a name that can be a channel is looked up: a viewer's request for anything else
	// (a rendition, a typo, a scan) costs no directory lookup and no pull.
	s.hub.Locate = func(ctx context.Context, name string) bool {
		if onair.ValidateUsername(name) != nil {
			return false
		}
		return p.Ensure(ctx, name)
	}
	return p, nil
}
