package app

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/config"
)

// requireClosedWithin reads from c until the server closes it, and fails unless that
// happens within limit. It returns what was read.
func requireClosedWithin(t *testing.T, c net.Conn, limit time.Duration) string {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(limit)))
	start := time.Now()
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", time.Since(start))
	}
	return string(b)
}

func mustDial(t *testing.T, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestHTTPTimeouts(t *testing.T) {
	ts := mustStartServer(t, func(c *config.Config) {
		c.HTTPHeaderTimeout = config.Duration(300 * time.Millisecond)
		c.HTTPBodyTimeout = config.Duration(600 * time.Millisecond)
		c.HTTPIdleTimeout = config.Duration(500 * time.Millisecond)
	})

	t.Run("slow headers", func(t *testing.T) {
		c := mustDial(t, ts.HTTPAddr())
		_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		require.NoError(t, err)
		requireClosedWithin(t, c, 3*time.Second)
	})

	t.Run("slow body", func(t *testing.T) {
		c := mustDial(t, ts.HTTPAddr())
		_, err := io.WriteString(c, "POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
		require.NoError(t, err)
		start := time.Now()
		out := requireClosedWithin(t, c, 3*time.Second)
		require.Contains(t, out, "400 Bad Request")
		require.Contains(t, out, "Could not read the request body.")
		t.Logf("slow body cut after %v", time.Since(start))
	})

	t.Run("idle keep-alive", func(t *testing.T) {
		c := mustDial(t, ts.HTTPAddr())
		_, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.False(t, res.Close, "kept alive")
		start := time.Now()
		requireClosedWithin(t, c, 3*time.Second)
		require.Greater(t, time.Since(start), 300*time.Millisecond)
	})

	t.Run("header too large", func(t *testing.T) {
		req, err := http.NewRequest("GET", ts.httpURL("/"), nil)
		require.NoError(t, err)
		req.Header.Set("X-Big", strings.Repeat("x", 100<<10))
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, res.StatusCode)
	})

	t.Run("body too large", func(t *testing.T) {
		res, err := http.Post(ts.httpURL("/api/v1/register"), "application/json", strings.NewReader(strings.Repeat(" ", 4<<20)))
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
		require.Contains(t, string(b), "Request body is too large (the limit is 64 KiB).")
	})
}

// TestWriteStall checks the per-write deadline on HTTP/1.1 and HTTP/2: a client that stops
// reading is cut, a slow but steady download and a response that waits before its first
// byte (an LL-HLS blocking request) are not.
func TestWriteStall(t *testing.T) {
	const timeout = 400 * time.Millisecond
	var cutAfter atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/flood", func(w http.ResponseWriter, _ *http.Request) {
		start := time.Now()
		chunk := make([]byte, 64<<10)
		for range 4096 { // 256 MiB, far beyond any socket buffer
			if _, err := w.Write(chunk); err != nil {
				cutAfter.Store(int64(time.Since(start)))
				return
			}
		}
	})
	mux.HandleFunc("/steady", func(w http.ResponseWriter, _ *http.Request) {
		for range 8 { // 8 × 150 ms: twice the timeout in all
			_, _ = w.Write([]byte("0123456789"))
			_ = http.NewResponseController(w).Flush()
			time.Sleep(150 * time.Millisecond)
		}
	})
	mux.HandleFunc("/blocking", func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(3 * timeout)
		_, _ = w.Write([]byte("late"))
	})
	for _, proto := range []string{"http1", "http2"} {
		t.Run(proto, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(writeStall(timeout, mux))
			srv.EnableHTTP2 = proto == "http2"
			srv.StartTLS()
			defer srv.Close()
			client := srv.Client()
			defer client.CloseIdleConnections()

			for _, path := range []string{"/steady", "/blocking"} {
				res, err := client.Get(srv.URL + path)
				require.NoError(t, err)
				b, err := io.ReadAll(res.Body)
				res.Body.Close()
				require.NoError(t, err, path)
				require.NotEmpty(t, b, path)
				require.Equal(t, proto == "http2", res.ProtoMajor == 2)
			}

			// A client that never reads: a raw TLS connection that sends the request and stops.
			cutAfter.Store(0)
			conf := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // test server
			if proto == "http2" {
				res, err := client.Get(srv.URL + "/flood") // read nothing of the body
				require.NoError(t, err)
				defer res.Body.Close()
			} else {
				c, err := tls.Dial("tcp", srv.Listener.Addr().String(), conf)
				require.NoError(t, err)
				defer c.Close()
				_, err = io.WriteString(c, "GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
				require.NoError(t, err)
			}
			require.Eventually(t, func() bool { return cutAfter.Load() > 0 }, 10*time.Second, 20*time.Millisecond,
				"a client that stops reading is cut")
			t.Logf("%s: a stalled client was cut after %v", proto, time.Duration(cutAfter.Load()))
		})
	}
}

func TestConnLimit(t *testing.T) {
	l := newConnLimit("test", 2, []string{"10.0.0.0/8"}, slog.New(slog.DiscardHandler))
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := l.wrap(raw)
	defer ln.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	a, b := mustDial(t, ln.Addr()), mustDial(t, ln.Addr())
	sa, sb := <-accepted, <-accepted
	third := mustDial(t, ln.Addr())
	requireClosedWithin(t, third, 3*time.Second) // refused at accept
	loop := netip.MustParseAddr("127.0.0.1")
	require.Equal(t, 2, l.count(loop))

	// A slot comes back when a connection closes (once, however often Close is called).
	require.NoError(t, sa.Close())
	_ = sa.Close()
	require.Equal(t, 1, l.count(loop))
	mustDial(t, ln.Addr())
	sc := <-accepted
	require.Equal(t, 2, l.count(loop))
	sb.Close()
	sc.Close()
	_, _ = a, b
	require.Equal(t, 0, l.count(loop))

	// Exempt networks are not counted.
	_, counted, ok := l.acquire(&net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 1})
	require.True(t, ok)
	require.False(t, counted)
}

// TestConnLimitsPerIP starts the server with small per-address limits and no exemption
// (the tests run on loopback, which is exempt by default).
func TestConnLimitsPerIP(t *testing.T) {
	ts := mustStartServer(t, func(c *config.Config) {
		c.HTTPMaxConnsPerIP = 3
		c.RTMPMaxConnsPerIP = 2
		c.ConnLimitExempt = nil
	})
	t.Run("http", func(t *testing.T) {
		var conns []net.Conn
		for range 3 {
			c := mustDial(t, ts.HTTPAddr())
			_, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
			require.NoError(t, err)
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, res.StatusCode)
			conns = append(conns, c)
		}
		requireClosedWithin(t, mustDial(t, ts.HTTPAddr()), 3*time.Second)
		conns[0].Close()
		require.Eventually(t, func() bool {
			res, err := http.Get(ts.httpURL("/healthz"))
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == http.StatusOK
		}, 5*time.Second, 50*time.Millisecond, "a slot is free again")
		http.DefaultClient.CloseIdleConnections()
	})
	t.Run("rtmp", func(t *testing.T) {
		mustDial(t, ts.RTMPAddr())
		mustDial(t, ts.RTMPAddr())
		third := mustDial(t, ts.RTMPAddr())
		// Refused at once: no handshake bytes, just the close.
		require.Empty(t, requireClosedWithin(t, third, 3*time.Second))
		require.Contains(t, ts.log.String(), "too many connections from one address")
	})
}
