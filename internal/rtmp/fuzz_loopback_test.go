package rtmp

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/unit"
)

// errorLog keeps the Error lines of a server's log (a recovered panic is one).
type errorLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *errorLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.lines = append(l.lines, string(p))
	l.mu.Unlock()
	return len(p), nil
}

func (l *errorLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.lines
	l.lines = nil
	return out
}

// loopbackServer starts a server on a loopback port with short timeouts, a hub with a
// live H.264 stream "dave" for players, and a log of Error lines only.
func loopbackServer(tb testing.TB) (*Server, *errorLog) {
	logs := &errorLog{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelError}))
	reg := &hub.Registry{Logger: logger, GracePeriod: -1}
	require.NoError(tb, reg.Start())
	s := &Server{
		Addr: "127.0.0.1:0", Hub: reg, Authorize: fakeAuthorize, Logger: logger,
		// Generous: the client half-closes, so the server sees EOF rather than a timeout,
		// and a fuzzing machine may be busy enough to delay a read past a short deadline.
		ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
		HandshakeTimeout: 5 * time.Second, MaxMessageSize: 1 << 20,
	}
	require.NoError(tb, s.Start())
	pub, err := reg.Publish("dave", []*unit.Track{{Codec: unit.CodecH264, SPS: seedSPS, PPS: seedPPS}})
	require.NoError(tb, err)
	require.NoError(tb, pub.WriteUnit(&unit.Unit{Key: true, Payload: [][]byte{seedSPS, seedPPS, {0x65, 0x88, 0x84}}}))
	tb.Cleanup(func() {
		s.Close()
		pub.Close()
		reg.Close()
	})
	return s, logs
}

// FuzzServerLoopback is the end-to-end fuzz target of the RTMP server: a real server on
// a loopback port, a plain handshake over TCP, then the fuzzer's bytes and a half-close.
// The server must close the connection (it never hangs), forget it, and log no error
// (a recovered panic logs one).
func FuzzServerLoopback(f *testing.F) {
	for _, b := range fuzzSeeds() {
		f.Add(b)
	}
	s, logs := loopbackServer(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		nc, err := net.Dial("tcp", s.ListenAddr().String())
		require.NoError(t, err)
		defer nc.Close()
		require.NoError(t, nc.SetDeadline(time.Now().Add(20*time.Second)))
		rawHandshake(t, nc)
		nc.Write(b)                      //nolint:errcheck // the server may have closed already
		nc.(*net.TCPConn).CloseWrite()   //nolint:errcheck
		_, err = io.Copy(io.Discard, nc) // until the server closes
		require.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the server did not close the connection")
		nc.Close()
		deadline := time.Now().Add(20 * time.Second)
		for len(s.Conns()) > 0 {
			require.True(t, time.Now().Before(deadline), "the server still tracks the connection")
			time.Sleep(time.Millisecond)
		}
		if errs := logs.take(); len(errs) > 0 {
			t.Fatalf("server logged errors:\n%s", errs)
		}
	})
}
