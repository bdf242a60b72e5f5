package rtmp

import (
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/unit"
)

// captureKeyUnit publishes a generated file with ffmpeg and returns the stream's tracks
// and its first video unit (a key unit), as the hub received them.
func captureKeyUnit(tb testing.TB, file string) ([]*unit.Track, *unit.Unit) {
	e := newTestEnv(tb)
	p := e.publishFile(media(tb, file), "live", keyOf("alice"), false)
	st := e.waitLive("alice")
	r, err := st.AddReader("test")
	require.NoError(tb, err)
	defer r.Close()
	tracks, units := readEvents(tb, r, 10, 5*time.Second)
	p.cmd.Process.Kill() //nolint:errcheck
	for _, u := range units {
		if tracks[u.Track].IsVideo() {
			require.True(tb, u.Key)
			return tracks, u
		}
	}
	tb.Fatal("no video unit")
	return nil, nil
}

// benchStream starts a hub stream with the tracks of a real file and returns its
// registry, its publisher and a key unit to write.
func benchStream(b *testing.B) (*hub.Registry, *hub.Publisher, *unit.Unit) {
	tracks, key := captureKeyUnit(b, "h264_aac.flv")
	reg := &hub.Registry{GracePeriod: -1, Logger: slog.New(slog.DiscardHandler)}
	require.NoError(b, reg.Start())
	b.Cleanup(reg.Close)
	pub, err := reg.Publish("bench", tracks)
	require.NoError(b, err)
	b.Cleanup(pub.Close)
	return reg, pub, key
}

// BenchmarkFanout writes one unit to a stream read by 1000 RTMP players: the unit is
// chunked once (encodings/op = 1) and every player appends the same bytes to its batch.
func BenchmarkFanout(b *testing.B) {
	const players = 1000
	reg, pub, key := benchStream(b)
	s := &Server{Hub: reg, Authorize: fakeAuthorize}
	require.NoError(b, s.init())
	defer s.cancel()

	var encodings atomic.Int64
	ps := make([]*player, players)
	for i := range ps {
		r, err := pub.Stream().AddReader("rtmp")
		require.NoError(b, err)
		defer r.Close()
		p := &player{s: s, c: &conn{}, r: r}
		p.encode = func(u *unit.Unit) []byte {
			encodings.Add(1)
			return p.encodeUnit(u)
		}
		ps[i] = p
	}
	drain := func() int {
		n := 0
		for _, p := range ps {
			p.evs, _ = p.r.TryReadBatch(p.evs[:0])
			p.bufs = p.appendEvents(p.bufs[:0], p.evs)
			clear(p.evs)
			m, _ := p.writeBatch(io.Discard)
			n += int(m)
		}
		return n
	}
	drain() // the session start
	encodings.Store(0)

	b.ReportAllocs()
	b.ResetTimer()
	bytesOut := 0
	for i := 0; i < b.N; i++ {
		u := &unit.Unit{Track: key.Track, Key: true, Payload: key.Payload, Size: key.Size,
			DTS: time.Duration(i) * 33 * time.Millisecond, PTS: time.Duration(i) * 33 * time.Millisecond}
		require.NoError(b, pub.WriteUnit(u))
		bytesOut += drain()
	}
	b.StopTimer()
	b.ReportMetric(float64(encodings.Load())/float64(b.N), "encodings/op")
	b.ReportMetric(float64(bytesOut)/float64(b.N)/players, "bytes/player/op")
}

// rawPlay connects a player with the fewest possible resources on the client side: a
// socket that sends the handshake and the play commands and then reads nothing.
func rawPlay(t *testing.T, addr, name string) net.Conn {
	nc, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	rawHandshake(t, nc)
	_, err = nc.Write(clientMessages(connectMsgs("play", name)...))
	require.NoError(t, err)
	return nc
}

func heapAndStacks() (heap, stacks uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse
}

// TestPlayerMemory measures the memory of idle players (the stream is in its grace
// window: players got the tracks and the GOP, and wait).
func TestPlayerMemory(t *testing.T) {
	idlePlayerMemory(t, func(_ *Server, reg *hub.Registry) { reg.GracePeriod = time.Minute })
}

func idlePlayerMemory(t *testing.T, opt func(*Server, *hub.Registry)) {
	const n = 200
	e := newTestEnv(t, opt)
	p := e.publishFile(media(t, "video_only.flv"), "live", keyOf("alice"), true)
	st := e.waitLive("alice")
	time.Sleep(1500 * time.Millisecond) // a full GOP in the cache
	p.cmd.Process.Kill()                //nolint:errcheck
	require.Eventually(t, func() bool { return !st.Publishing() }, 5*time.Second, 10*time.Millisecond)

	addr := e.srv.ListenAddr().String()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 10 { // warm up
		conns = append(conns, rawPlay(t, addr, "alice"))
	}
	require.Eventually(t, func() bool { return st.Readers()["rtmp"] == 10 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	heap0, stacks0 := heapAndStacks()
	for range n {
		conns = append(conns, rawPlay(t, addr, "alice"))
	}
	require.Eventually(t, func() bool { return st.Readers()["rtmp"] == n+10 }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // the GOPs are written, the players wait
	heap1, stacks1 := heapAndStacks()
	heap := (int64(heap1) - int64(heap0)) / n
	stacks := (int64(stacks1) - int64(stacks0)) / n
	per := heap + stacks
	t.Logf("idle player: %d bytes each: %d heap (client socket included), %d goroutine stacks", per, heap, stacks)
	if !raceEnabled {
		require.Less(t, per, int64(64<<10))
	}
}

// BenchmarkFanoutPooled is BenchmarkFanout through a shard: one unit written to a
// stream read by 1000 pooled players, then one shard tick, which writes every player's
// batch to its socket (a Unix socket pair drained by a goroutine) with a non-blocking
// writev, after a non-blocking read of what the player sent. allocs/op is per unit for
// all 1000 players.
func BenchmarkFanoutPooled(b *testing.B) {
	if !rawWritevSupported {
		b.Skip("no raw writev on this platform")
	}
	const players = 1000
	reg, pub, key := benchStream(b)
	s := &Server{Hub: reg, Authorize: fakeAuthorize, WriteMergeWindow: time.Millisecond, ReadTimeout: time.Hour}
	require.NoError(b, s.init())
	defer s.cancel()
	sh := &playShard{s: s}
	sh.init()

	for range players {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
		require.NoError(b, err)
		syscall.SetsockoptInt(fds[0], syscall.SOL_SOCKET, syscall.SO_SNDBUF, 1<<20) //nolint:errcheck
		local, peer := fileConn(b, fds[0]), fileConn(b, fds[1])
		defer local.Close()
		defer peer.Close()
		go io.Copy(io.Discard, peer) //nolint:errcheck

		r, err := pub.Stream().AddReader("rtmp")
		require.NoError(b, err)
		defer r.Close()
		p := &player{s: s, c: &conn{nc: local}, r: r, lastRead: time.Now()}
		p.encode = p.encodeUnit
		p.rc, err = local.(syscall.Conn).SyscallConn()
		require.NoError(b, err)
		sh.add(p)
	}
	sh.tick() // the session start
	out0 := s.bytesOut.Load()

	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		u := &unit.Unit{Track: key.Track, Key: true, Payload: key.Payload, Size: key.Size,
			DTS: time.Duration(i) * 33 * time.Millisecond, PTS: time.Duration(i) * 33 * time.Millisecond}
		require.NoError(b, pub.WriteUnit(u))
		sh.tick()
	}
	b.StopTimer()
	require.Len(b, sh.players, players, "a player was dropped")
	b.ReportMetric(float64(s.bytesOut.Load()-out0)/float64(b.N)/players, "bytes/player/op")
}

func fileConn(tb testing.TB, fd int) net.Conn {
	f := os.NewFile(uintptr(fd), "socketpair")
	defer f.Close()
	c, err := net.FileConn(f)
	require.NoError(tb, err)
	return c
}
