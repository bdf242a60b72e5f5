// Package bus carries domain events (live/offline, chat, notifications, viewer counts)
// between components: in process on one node (Local), and across nodes later (NATS).
//
// Topics are plain strings such as "chat.alice", "live" or "notify.42". A subscriber
// receives the events published on its exact topic after it subscribed. Delivery never
// blocks the publisher: every subscription has a bounded buffer, and when it is full the
// event is dropped for that subscriber and counted (Subscription.Dropped).
package bus

import (
	"context"
	"encoding/json"
	"errors"
)

// Event types.
const (
	TypeLive         = "live"
	TypeOffline      = "offline"
	TypeChatMessage  = "chat.message"
	TypeChatDelete   = "chat.delete"
	TypeChatBan      = "chat.ban"
	TypeNotification = "notification"
	TypeViewers      = "viewers"
)

// ErrClosed is returned by Publish and Subscribe on a closed bus.
var ErrClosed = errors.New("bus closed")

// Event is one domain event. Data is shared by every subscriber of the event: treat it as
// read-only.
type Event struct {
	// Type is one of the Type constants.
	Type string `json:"type"`
	// Channel is the channel (username) the event is about, if any.
	Channel string `json:"channel,omitempty"`
	// Data is the event's payload; its shape depends on Type.
	Data json.RawMessage `json:"data,omitempty"`
}

// Bus publishes events to topics and subscribes to them.
type Bus interface {
	// Publish delivers ev to every current subscriber of topic without blocking: a
	// subscriber whose buffer is full misses the event (it is counted in its Dropped).
	// It fails with ErrClosed once the bus is closed, or with ctx's error when ctx is done.
	Publish(ctx context.Context, topic string, ev Event) error

	// Subscribe returns a subscription to topic whose channel buffers up to buffer events
	// (at least 1). It fails with ErrClosed once the bus is closed.
	Subscribe(topic string, buffer int) (Subscription, error)
}

// Subscription is one subscriber's view of a topic.
type Subscription interface {
	// C returns the channel events arrive on. It is closed when the subscription or the
	// bus is closed.
	C() <-chan Event

	// Dropped returns how many events were dropped because the buffer was full.
	Dropped() uint64

	// Close ends the subscription and closes C. It is safe to call more than once and
	// concurrently with Publish.
	Close()
}
