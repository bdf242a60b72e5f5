package hub

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/unit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var testTracks = []*unit.Track{
	{Codec: unit.CodecH264, SPS: []byte{0x67}, PPS: []byte{0x68}, Width: 640, Height: 360},
	{Codec: unit.CodecAAC, AACConfig: []byte{0x12, 0x10}, SampleRate: 48000, ChannelCount: 2},
}

func mustRegistry(t testing.TB, grace time.Duration, queue int) *Registry {
	t.Helper()
	r := &Registry{GracePeriod: grace, QueueSize: queue}
	require.NoError(t, r.Start())
	t.Cleanup(r.Close)
	return r
}

func video(dts time.Duration, key bool) *unit.Unit {
	return &unit.Unit{Track: 0, DTS: dts, PTS: dts, Key: key, Payload: [][]byte{make([]byte, 100)}}
}

func audio(dts time.Duration) *unit.Unit {
	return &unit.Unit{Track: 1, DTS: dts, PTS: dts, Key: true, Payload: [][]byte{make([]byte, 10)}}
}

func readN(t *testing.T, r *Reader, n int) []Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out []Event
	for len(out) < n {
		ev, err := r.Read(ctx)
		require.NoError(t, err)
		out = append(out, ev)
	}
	return out
}

func TestLateJoinerGetsTracksAndGOP(t *testing.T) {
	reg := mustRegistry(t, time.Second, 64)
	p, err := reg.Publish("alice", testTracks)
	require.NoError(t, err)

	// Non-key video before the first keyframe is dropped by the hub.
	require.NoError(t, p.WriteUnit(video(1000*time.Millisecond, false)))
	require.NoError(t, p.WriteUnit(video(1033*time.Millisecond, true)))
	require.NoError(t, p.WriteUnit(audio(1040*time.Millisecond)))
	require.NoError(t, p.WriteUnit(video(1066*time.Millisecond, false)))
	require.NoError(t, p.WriteUnit(video(1100*time.Millisecond, true))) // new GOP
	require.NoError(t, p.WriteUnit(video(1133*time.Millisecond, false)))

	r, err := reg.Stream("alice").AddReader("test")
	require.NoError(t, err)
	defer r.Close()
	evs := readN(t, r, 3)
	require.Equal(t, testTracks, evs[0].Tracks)
	require.False(t, evs[0].Discontinuity)
	require.True(t, evs[1].Unit.Key)
	// Rebased: the first written unit is at 0.
	require.Equal(t, 67*time.Millisecond, evs[1].Unit.DTS)
	// Cached units keep the time the hub received them.
	require.False(t, evs[1].Unit.Received.IsZero())
	require.False(t, evs[1].Unit.Received.After(time.Now()))
	require.Equal(t, 100*time.Millisecond, evs[2].Unit.DTS)
	require.Equal(t, 0, r.Queued())
}

func TestDuplicatePublisherRefused(t *testing.T) {
	reg := mustRegistry(t, time.Second, 64)
	p, err := reg.Publish("alice", testTracks)
	require.NoError(t, err)
	_, err = reg.Publish("alice", testTracks)
	require.ErrorIs(t, err, ErrPublisherActive)
	require.NoError(t, p.WriteUnit(video(0, true)))
}

func TestSlowReaderSkipsToKeyframe(t *testing.T) {
	reg := mustRegistry(t, time.Second, 8)
	p, err := reg.Publish("alice", testTracks[:1])
	require.NoError(t, err)
	slow, err := reg.Stream("alice").AddReader("slow")
	require.NoError(t, err)
	defer slow.Close()
	fast, err := reg.Stream("alice").AddReader("fast")
	require.NoError(t, err)
	defer fast.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := 0
	for i := range 100 {
		require.NoError(t, p.WriteUnit(video(time.Duration(i)*33*time.Millisecond, i%30 == 0)))
		evs, err := fast.ReadBatch(ctx, nil)
		require.NoError(t, err)
		got += len(evs)
	}
	require.Equal(t, 101, got) // tracks + 100 units: the fast reader lost nothing
	require.Zero(t, fast.Dropped())
	require.NotZero(t, slow.Dropped())

	// The slow reader holds the start, then resumes at a keyframe.
	evs, err := slow.ReadBatch(ctx, nil)
	require.NoError(t, err)
	require.Len(t, evs, 8)
	require.NoError(t, p.WriteUnit(video(100*33*time.Millisecond, false)))
	require.NoError(t, p.WriteUnit(video(101*33*time.Millisecond, true)))
	evs, err = slow.ReadBatch(ctx, nil)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.True(t, evs[0].Unit.Key)
}

func TestReconnectInsideGrace(t *testing.T) {
	reg := mustRegistry(t, time.Minute, 64)
	p, err := reg.Publish("alice", testTracks)
	require.NoError(t, err)
	r, err := reg.Stream("alice").AddReader("test")
	require.NoError(t, err)
	defer r.Close()
	require.NoError(t, p.WriteUnit(video(5*time.Second, true)))
	require.NoError(t, p.WriteUnit(video(6*time.Second, false)))
	p.Close()
	require.NotNil(t, reg.Stream("alice"))
	require.False(t, reg.Stream("alice").Publishing())

	p2, err := reg.Publish("alice", testTracks)
	require.NoError(t, err)
	// The new publisher starts its timestamps at 0 again: the hub continues the timeline.
	require.NoError(t, p2.WriteUnit(video(0, true)))
	evs := readN(t, r, 5)
	require.NotNil(t, evs[3].Tracks)
	require.True(t, evs[3].Discontinuity)
	require.Equal(t, time.Second+100*time.Millisecond, evs[4].Unit.DTS)
	p2.Close()
}

func TestStreamEndsAfterGrace(t *testing.T) {
	ended := make(chan string, 1)
	reg := &Registry{GracePeriod: 50 * time.Millisecond, OnEnd: func(n string) { ended <- n }}
	require.NoError(t, reg.Start())
	defer reg.Close()
	p, err := reg.Publish("alice", testTracks)
	require.NoError(t, err)
	r, err := reg.Stream("alice").AddReader("test")
	require.NoError(t, err)
	defer r.Close()
	p.Close()
	require.Equal(t, "alice", <-ended)
	require.Nil(t, reg.Stream("alice"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = r.Read(ctx) // tracks event
	require.NoError(t, err)
	_, err = r.Read(ctx)
	require.ErrorIs(t, err, ErrStreamEnded)
}

func TestEndKicksPublisher(t *testing.T) {
	reg := mustRegistry(t, time.Minute, 64)
	p, err := reg.Publish("alice", testTracks)
	require.NoError(t, err)
	require.True(t, reg.End("alice"))
	select {
	case <-p.Done():
	case <-time.After(time.Second):
		t.Fatal("publisher not kicked")
	}
	require.ErrorIs(t, p.WriteUnit(video(0, true)), ErrPublisherClosed)
	p.Close()
}

func TestPublisherEndSkipsGrace(t *testing.T) {
	reg := mustRegistry(t, time.Minute, 64)
	p, err := reg.PublishFrom("alice", testTracks, SourceRelay)
	require.NoError(t, err)
	st := reg.Stream("alice")
	r, err := st.AddReader("test")
	require.NoError(t, err)
	defer r.Close()
	p.End()
	require.Nil(t, reg.Stream("alice"), "no grace window")
	require.True(t, st.Ended())
	readN(t, r, 1) // tracks
	_, err = r.Read(context.Background())
	require.ErrorIs(t, err, ErrStreamEnded)

	// A publisher that was replaced does not end its successor's stream.
	p1, err := reg.Publish("bob", testTracks)
	require.NoError(t, err)
	p1.Close()
	p2, err := reg.Publish("bob", testTracks)
	require.NoError(t, err)
	p1.End()
	require.NotNil(t, reg.Stream("bob"))
	require.True(t, reg.Stream("bob").Publishing())
	p2.Close()
}

func TestTimestampsBackwards(t *testing.T) {
	reg := mustRegistry(t, time.Second, 64)
	p, err := reg.Publish("alice", testTracks)
	require.NoError(t, err)
	require.NoError(t, p.WriteUnit(video(time.Second, true)))
	require.NoError(t, p.WriteUnit(audio(time.Second)))
	require.NoError(t, p.WriteUnit(audio(1020*time.Millisecond)))
	err = p.WriteUnit(audio(900 * time.Millisecond))
	require.True(t, errors.Is(err, ErrTimestampBackwards), err)
	err = p.WriteUnit(&unit.Unit{Track: 5, DTS: 2 * time.Second})
	require.ErrorIs(t, err, ErrInvalidUnit)
}

func TestGOPCacheBounded(t *testing.T) {
	reg := &Registry{MaxGOPBytes: 1000}
	require.NoError(t, reg.Start())
	defer reg.Close()
	p, err := reg.Publish("alice", testTracks[:1])
	require.NoError(t, err)
	for i := range 20 {
		require.NoError(t, p.WriteUnit(video(time.Duration(i)*33*time.Millisecond, i == 0)))
	}
	r, err := reg.Stream("alice").AddReader("late")
	require.NoError(t, err)
	defer r.Close()
	require.Equal(t, 1, r.Queued()) // tracks only: the GOP was over budget
}

func TestInfo(t *testing.T) {
	now := time.Unix(1000, 0)
	reg := &Registry{Now: func() time.Time { return now }}
	require.NoError(t, reg.Start())
	defer reg.Close()
	p, err := reg.Publish("alice", testTracks)
	require.NoError(t, err)
	for i := range 90 { // 3 s at 30 fps, 100 bytes a frame, keyframe every second
		now = time.Unix(1000, 0).Add(time.Duration(i) * time.Second / 30)
		require.NoError(t, p.WriteUnit(video(time.Duration(i)*time.Second/30, i%30 == 0)))
	}
	in := reg.Stream("alice").Info()
	require.Equal(t, "alice", in.Name)
	require.True(t, in.Publishing)
	require.InDelta(t, 30, in.FPS, 1)
	require.InDelta(t, 24, in.VideoKbps, 1) // 30 * 100 B * 8
	require.Equal(t, time.Second, in.KeyframeInterval)
}

// BenchmarkFanout measures writing one unit to 1000 attached readers.
func BenchmarkFanout(b *testing.B) {
	reg := &Registry{QueueSize: 1 << 16}
	require.NoError(b, reg.Start())
	defer reg.Close()
	p, err := reg.Publish("alice", testTracks[:1])
	require.NoError(b, err)
	readers := make([]*Reader, 1000)
	for i := range readers {
		readers[i], err = reg.Stream("alice").AddReader("bench")
		require.NoError(b, err)
	}
	payload := [][]byte{make([]byte, 10000)}
	units := make([]unit.Unit, b.N)
	var buf []Event
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		u := &units[i]
		u.DTS = time.Duration(i) * time.Millisecond
		u.PTS = u.DTS
		u.Key = i%60 == 0
		u.Payload = payload
		if err := p.WriteUnit(u); err != nil {
			b.Fatal(err)
		}
		if i%512 == 511 {
			for _, r := range readers {
				buf, _ = r.TryReadBatch(buf[:0])
			}
		}
	}
}

func TestSourceAndLookup(t *testing.T) {
	var started []string
	reg := &Registry{GracePeriod: -1, OnStart: func(n string) { started = append(started, n) }}
	require.NoError(t, reg.Start())
	defer reg.Close()
	tracks := []*unit.Track{{Codec: unit.CodecAAC, AACConfig: []byte{0x12, 0x10}}}

	p, err := reg.PublishFrom("alice~720p", tracks, SourceDerived)
	require.NoError(t, err)
	defer p.Close()
	require.Equal(t, SourceDerived, reg.Stream("alice~720p").Source())
	require.Empty(t, started, "a derived stream does not start a channel")

	require.Nil(t, reg.Lookup(context.Background(), "bob"), "no Locate: local only")
	reg.Locate = func(ctx context.Context, name string) bool {
		_, err := reg.PublishFrom(name, tracks, SourceRelay)
		return err == nil
	}
	st := reg.Lookup(context.Background(), "bob")
	require.NotNil(t, st)
	require.Equal(t, SourceRelay, st.Source())
	require.Equal(t, "relay", st.Source().String())
	require.Empty(t, started)
}
