package bus_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/bus"
	"github.com/onair/onair/internal/testutil"
)

// newNATSPair returns two buses (two "nodes") on the test NATS server, sharing a fresh
// subject prefix.
func newNATSPair(t *testing.T) (*bus.NATS, *bus.NATS) {
	t.Helper()
	url, unique := testutil.NATSURL(t)
	prefix := "test." + unique
	a, err := bus.NewNATS(url, bus.NATSOptions{Name: "a", SubjectPrefix: prefix})
	require.NoError(t, err)
	t.Cleanup(a.Close)
	b, err := bus.NewNATS(url, bus.NATSOptions{Name: "b", SubjectPrefix: prefix})
	require.NoError(t, err)
	t.Cleanup(b.Close)
	return a, b
}

func recv(t *testing.T, s bus.Subscription) bus.Event {
	t.Helper()
	select {
	case ev, ok := <-s.C():
		require.True(t, ok, "subscription closed")
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
		return bus.Event{}
	}
}

func TestNATSAcrossNodes(t *testing.T) {
	a, b := newNATSPair(t)
	ctx := context.Background()

	onA, err := a.Subscribe("chat.alice", 8)
	require.NoError(t, err)
	onB, err := b.Subscribe("chat.alice", 8)
	require.NoError(t, err)
	otherB, err := b.Subscribe("chat.bob", 8)
	require.NoError(t, err)
	require.NoError(t, a.Conn().Flush())
	require.NoError(t, b.Conn().Flush())

	ev := bus.Event{Type: bus.TypeChatMessage, Channel: "alice", Data: json.RawMessage(`{"id":1,"text":"hi"}`)}
	require.NoError(t, a.Publish(ctx, "chat.alice", ev))

	require.Equal(t, ev, recv(t, onB), "the other node gets it")
	require.Equal(t, ev, recv(t, onA), "the publishing node gets it from its fast path")

	// No echo: a's subscriber got it exactly once; bob's topic got nothing.
	require.NoError(t, b.Publish(ctx, "chat.bob", bus.Event{Type: bus.TypeChatDelete, Channel: "bob"}))
	require.Equal(t, "bob", recv(t, otherB).Channel)
	require.NoError(t, a.Publish(ctx, "chat.alice", bus.Event{Type: bus.TypeChatDelete, Channel: "second"}))
	require.Equal(t, "second", recv(t, onA).Channel, "the first event was not delivered twice")
	require.Equal(t, "second", recv(t, onB).Channel)
}

func TestNATSOwnSeesOnlyLocalEvents(t *testing.T) {
	a, b := newNATSPair(t)
	ctx := context.Background()
	own, err := a.Own().Subscribe("live", 8)
	require.NoError(t, err)
	all, err := a.Subscribe("live", 8)
	require.NoError(t, err)
	require.NoError(t, a.Conn().Flush())

	require.NoError(t, b.Publish(ctx, "live", bus.Event{Type: bus.TypeLive, Channel: "from-b"}))
	require.Equal(t, "from-b", recv(t, all).Channel)
	require.NoError(t, a.Own().Publish(ctx, "live", bus.Event{Type: bus.TypeLive, Channel: "from-a"}))
	require.Equal(t, "from-a", recv(t, own).Channel, "own skips b's event")
	require.Equal(t, "from-a", recv(t, all).Channel)
}

func TestNATSDropsWhenFull(t *testing.T) {
	a, b := newNATSPair(t)
	slow, err := b.Subscribe("viewers", 2)
	require.NoError(t, err)
	require.NoError(t, b.Conn().Flush())
	for range 10 {
		require.NoError(t, a.Publish(context.Background(), "viewers", bus.Event{Type: bus.TypeViewers}))
	}
	require.NoError(t, a.Conn().Flush())
	require.Eventually(t, func() bool { return slow.Dropped() == 8 }, 5*time.Second, 10*time.Millisecond)
	require.Len(t, slow.C(), 2)
}

func TestNATSSubjects(t *testing.T) {
	a, _ := newNATSPair(t)
	p := len(a.Subject(""))
	cases := map[string]string{
		"chat.alice": ".chat.alice",
		"live":       ".live",
		"notify.42":  ".notify.42",
		"a b.*.>":    ".a~20b.~2A.~3E",
		"x..y.":      ".x.~.y.~",
	}
	for topic, want := range cases {
		got := a.Subject(topic)
		require.Equal(t, want, got[p-2:], topic)
	}
}

func TestNATSCloseAndUnsubscribe(t *testing.T) {
	a, b := newNATSPair(t)
	s1, err := b.Subscribe("notify.7", 4)
	require.NoError(t, err)
	s2, err := b.Subscribe("notify.7", 4)
	require.NoError(t, err)
	s1.Close()
	s1.Close()
	require.NoError(t, b.Conn().Flush())
	require.NoError(t, a.Publish(context.Background(), "notify.7", bus.Event{Type: bus.TypeNotification}))
	recv(t, s2) // the topic is still subscribed while s2 lives

	b.Close()
	_, ok := <-s2.C()
	require.False(t, ok)
	_, err = b.Subscribe("live", 1)
	require.ErrorIs(t, err, bus.ErrClosed)
	require.ErrorIs(t, b.Publish(context.Background(), "live", bus.Event{}), bus.ErrClosed)
	s2.Close()
	b.Close()
}

func TestNATSConnectError(t *testing.T) {
	_, err := bus.NewNATS("nats://user:s3cret@127.0.0.1:1", bus.NATSOptions{})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")
}

// TestNATSReconnect runs a NATS server of its own, restarts it, and checks that the
// buses reconnect and their subscriptions carry events again.
func TestNATSReconnect(t *testing.T) {
	srv := testutil.StartNATSServer(t)
	url := srv.URL
	a, err := bus.NewNATS(url, bus.NATSOptions{Name: "a"})
	require.NoError(t, err)
	defer a.Close()
	b, err := bus.NewNATS(url, bus.NATSOptions{Name: "b"})
	require.NoError(t, err)
	defer b.Close()
	sub, err := b.Subscribe("chat.alice", 64)
	require.NoError(t, err)
	require.NoError(t, b.Conn().Flush())
	require.NoError(t, a.Publish(context.Background(), "chat.alice", bus.Event{Channel: "before"}))
	require.Equal(t, "before", recv(t, sub).Channel)

	srv.Stop()
	require.Eventually(t, func() bool { return !b.Conn().IsConnected() }, 5*time.Second, 10*time.Millisecond)
	// Publishing while disconnected neither blocks nor fails (the client buffers it).
	require.NoError(t, a.Publish(context.Background(), "chat.alice", bus.Event{Channel: "while down"}))
	srv.Start()
	require.Eventually(t, func() bool { return a.Conn().IsConnected() && b.Conn().IsConnected() }, 15*time.Second, 20*time.Millisecond)
	require.NoError(t, b.Conn().Flush())
	require.Eventually(t, func() bool {
		_ = a.Publish(context.Background(), "chat.alice", bus.Event{Channel: "after"})
		select {
		case ev := <-sub.C():
			return ev.Channel == "after" || ev.Channel == "while down"
		case <-time.After(200 * time.Millisecond):
			return false
		}
	}, 10*time.Second, 10*time.Millisecond, "the subscription carries events again")
}
