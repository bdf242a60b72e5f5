package bus_test

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/bus"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLocalPublishSubscribe(t *testing.T) {
	b := bus.NewLocal()
	defer b.Close()

	a1, err := b.Subscribe("chat.alice", 4)
	require.NoError(t, err)
	a2, err := b.Subscribe("chat.alice", 4)
	require.NoError(t, err)
	other, err := b.Subscribe("chat.bob", 4)
	require.NoError(t, err)

	ev := bus.Event{Type: bus.TypeChatMessage, Channel: "alice", Data: json.RawMessage(`{"id":1}`)}
	require.NoError(t, b.Publish(context.Background(), "chat.alice", ev))

	require.Equal(t, ev, <-a1.C())
	require.Equal(t, ev, <-a2.C())
	require.Empty(t, other.C())
	require.Equal(t, 2, b.Subscribers("chat.alice"))

	// Publishing to a topic nobody listens to is fine.
	require.NoError(t, b.Publish(context.Background(), "live", ev))
}

func TestLocalDropsWhenFull(t *testing.T) {
	b := bus.NewLocal()
	defer b.Close()

	slow, err := b.Subscribe("live", 2)
	require.NoError(t, err)
	fast, err := b.Subscribe("live", 100)
	require.NoError(t, err)

	for i := range 10 {
		require.NoError(t, b.Publish(context.Background(), "live", bus.Event{Type: bus.TypeLive, Channel: strconv.Itoa(i)}))
	}
	require.Equal(t, uint64(8), slow.Dropped())
	require.Equal(t, uint64(0), fast.Dropped())
	require.Equal(t, "0", (<-slow.C()).Channel)
	require.Equal(t, "1", (<-slow.C()).Channel)
	require.Len(t, fast.C(), 10)
}

func TestLocalClose(t *testing.T) {
	cases := []struct {
		name  string
		close func(b *bus.Local, s bus.Subscription)
	}{
		{"subscription", func(_ *bus.Local, s bus.Subscription) { s.Close() }},
		{"subscription twice", func(_ *bus.Local, s bus.Subscription) { s.Close(); s.Close() }},
		{"bus", func(b *bus.Local, _ bus.Subscription) { b.Close() }},
		{"bus then subscription", func(b *bus.Local, s bus.Subscription) { b.Close(); s.Close(); b.Close() }},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			b := bus.NewLocal()
			defer b.Close()
			s, err := b.Subscribe("notify.42", 1)
			require.NoError(t, err)
			ca.close(b, s)
			_, ok := <-s.C()
			require.False(t, ok)
			require.Equal(t, 0, b.Subscribers("notify.42"))
		})
	}

	t.Run("closed bus refuses", func(t *testing.T) {
		b := bus.NewLocal()
		b.Close()
		_, err := b.Subscribe("live", 1)
		require.ErrorIs(t, err, bus.ErrClosed)
		require.ErrorIs(t, b.Publish(context.Background(), "live", bus.Event{}), bus.ErrClosed)
	})

	t.Run("done context", func(t *testing.T) {
		b := bus.NewLocal()
		defer b.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, b.Publish(ctx, "live", bus.Event{}), context.Canceled)
	})
}

// TestLocalConcurrent races publishers against subscribers that come and go; run with -race.
func TestLocalConcurrent(t *testing.T) {
	b := bus.NewLocal()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				_ = b.Publish(context.Background(), "chat.alice", bus.Event{Type: bus.TypeChatMessage})
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for range 200 {
				s, err := b.Subscribe("chat.alice", 8)
				if err != nil {
					return
				}
				for range len(s.C()) {
					<-s.C()
				}
				s.Close()
			}
		})
	}
	last, err := b.Subscribe("chat.alice", 8)
	require.NoError(t, err)
	var lastWG sync.WaitGroup
	lastWG.Go(func() {
		for range last.C() { // ends when the bus closes
		}
	})
	wg.Wait()
	b.Close()
	lastWG.Wait()
}

func BenchmarkLocalPublish2000(b *testing.B) {
	bs := bus.NewLocal()
	var wg sync.WaitGroup
	defer func() {
		bs.Close()
		wg.Wait()
	}()
	for range 2000 {
		s, err := bs.Subscribe("chat.alice", 64)
		require.NoError(b, err)
		wg.Go(func() {
			for range s.C() {
			}
		})
	}
	ev := bus.Event{Type: bus.TypeChatMessage, Channel: "alice", Data: json.RawMessage(`{"type":"message","id":1,"user":"bob","text":"hi"}`)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := bs.Publish(ctx, "chat.alice", ev); err != nil {
			b.Fatal(err)
		}
	}
}
