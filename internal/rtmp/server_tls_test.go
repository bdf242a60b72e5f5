package rtmp

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/hub"
	"github.com/onair/onair/internal/testutil"
)

// newTLSEnv starts a server that also listens for RTMPS, and returns the client TLS
// configuration that trusts it.
func newTLSEnv(t *testing.T) (*testEnv, *tls.Config) {
	t.Helper()
	tc := testutil.MustWriteCert(t, t.TempDir(), "rtmps")
	e := newTestEnv(t, func(s *Server, _ *hub.Registry) {
		s.TLSAddr = "127.0.0.1:0"
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{tc.Pair}, MinVersion: tls.VersionTLS12}
	})
	return e, &tls.Config{RootCAs: tc.Pool(), ServerName: "127.0.0.1"}
}

func (e *testEnv) tlsURL(app, name string) string {
	return fmt.Sprintf("rtmps://%s/%s/%s", e.srv.TLSListenAddr(), app, name)
}

// dial connects a gortmplib client (a publisher when publish is set) to rawURL.
func dial(rawURL string, publish bool, conf *tls.Config) (*gortmplib.Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	c := &gortmplib.Client{URL: u, Publish: publish, TLSConfig: conf}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Initialize(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func TestServerRTMPS(t *testing.T) {
	e, conf := newTLSEnv(t)
	pub, err := dial(e.tlsURL("live", keyOf("alice")), true, conf)
	require.NoError(t, err)
	defer pub.Close()
	publishH264Config(t, pub)
	e.waitLive("alice")

	// The same channel over plain RTMP is taken: one publisher across both listeners.
	_, err = dial(e.url("live", keyOf("alice")), true, nil)
	require.Error(t, err)

	// Players on either listener.
	for _, u := range []string{e.tlsURL("live", "alice"), e.url("live", "alice")} {
		var c *gortmplib.Client
		if u[:6] == "rtmps:" {
			c, err = dial(u, false, conf)
		} else {
			c, err = dial(u, false, nil)
		}
		require.NoError(t, err, u)
		c.Close()
	}

	// A client that does not trust the certificate gets no further than the handshake.
	_, err = dial(e.tlsURL("live", "alice"), false, &tls.Config{ServerName: "127.0.0.1"})
	require.ErrorContains(t, err, "certificate")
	// Plain RTMP on the RTMPS port is not RTMP: the connection fails.
	_, err = dial("rtmp://"+e.srv.TLSListenAddr().String()+"/live/alice", false, nil)
	require.Error(t, err)
	e.requireNoKeyInLogs()
}

// TestServerPublishRace sends publishers with the same key at once on both listeners (a
// reconnecting encoder racing its old connection, or a leaked key): exactly one wins.
// A user has one channel and one key, so this is the per-user publish limit.
func TestServerPublishRace(t *testing.T) {
	e, conf := newTLSEnv(t)
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		won  []*gortmplib.Client
		lost int
	)
	for i := range n {
		wg.Go(func() {
			u, c := e.url("live", keyOf("alice")), (*tls.Config)(nil)
			if i%2 == 1 {
				u, c = e.tlsURL("live", keyOf("alice")), conf
			}
			cl, err := dial(u, true, c)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				lost++
				return
			}
			won = append(won, cl)
		})
	}
	wg.Wait()
	for _, c := range won {
		defer c.Close()
	}
	require.Len(t, won, 1, "exactly one publisher wins")
	require.Equal(t, n-1, lost)
}

func TestServerMaxConnsPerIP(t *testing.T) {
	e := newTestEnv(t, func(s *Server, _ *hub.Registry) { s.MaxConnsPerIP = 2 })
	addr := e.srv.ListenAddr().String()
	closedAtOnce := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF
	}
	var open []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		open = append(open, c)
	}
	require.Eventually(t, func() bool { return len(e.srv.Conns()) == 2 }, 5*time.Second, 10*time.Millisecond)
	third, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer third.Close()
	require.True(t, closedAtOnce(third), "the third connection is refused")
	require.Contains(t, e.log.String(), "too many connections from one address")

	// A slot comes back when a connection ends.
	open[0].Close()
	require.Eventually(t, func() bool { return len(e.srv.Conns()) == 1 }, 5*time.Second, 10*time.Millisecond)
	again, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer again.Close()
	require.Eventually(t, func() bool { return len(e.srv.Conns()) == 2 }, 5*time.Second, 10*time.Millisecond)

	// Exempt networks are not counted.
	e2 := newTestEnv(t, func(s *Server, _ *hub.Registry) {
		s.MaxConnsPerIP = 1
		s.ConnLimitExempt = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	for range 3 {
		c, err := net.Dial("tcp", e2.srv.ListenAddr().String())
		require.NoError(t, err)
		defer c.Close()
	}
	require.Eventually(t, func() bool { return len(e2.srv.Conns()) == 3 }, 5*time.Second, 10*time.Millisecond)
}
