package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/config"
	"github.com/onair/onair/internal/testutil"
)

// mustStartTLSServer starts a server with HTTPS (and RTMPS when rtmps is set) on a
// certificate made now, and returns it with an HTTPS client that trusts it.
func mustStartTLSServer(t *testing.T, rtmps bool) (*testServer, *http.Client) {
	t.Helper()
	tc := testutil.MustWriteCert(t, t.TempDir(), "onair")
	ts := mustStartServer(t, func(c *config.Config) {
		c.TLSCert, c.TLSKey, c.HTTPSAddr = tc.CertFile, tc.KeyFile, "127.0.0.1:0"
		if rtmps {
			c.RTMPSAddr = "127.0.0.1:0"
		}
	})
	pool := tc.Pool()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	client := &http.Client{
		Jar: jar,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool},
			ForceAttemptHTTP2: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(client.CloseIdleConnections)
	return ts, client
}

func (ts *testServer) httpsURL(path string) string {
	return "https://" + ts.HTTPSAddr().String() + path
}

func TestHTTPS(t *testing.T) {
	ts, client := mustStartTLSServer(t, false)
	mustCreateUser(t, ts, "alice")

	t.Run("http2 and hsts", func(t *testing.T) {
		for _, path := range []string{"/", "/@alice", "/healthz", "/api/v1/streams", "/metrics", "/vod/1/index.m3u8"} {
			res, err := client.Get(ts.httpsURL(path))
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			require.Equal(t, "HTTP/2.0", res.Proto, path)
			require.Equal(t, "max-age=31536000", res.Header.Get("Strict-Transport-Security"), path)
			require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"), path)
			require.Contains(t, res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'", path)
		}
	})

	t.Run("secure session cookie", func(t *testing.T) {
		body := strings.NewReader(`{"username":"alice","password":"correct horse battery"}`)
		req, err := http.NewRequest("POST", ts.httpsURL("/api/v1/login"), body)
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", "https://"+ts.HTTPSAddr().String())
		res, err := client.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.Len(t, res.Cookies(), 1)
		require.True(t, res.Cookies()[0].Secure)
		require.True(t, res.Cookies()[0].HttpOnly)
	})

	t.Run("plain http redirects", func(t *testing.T) {
		port := ts.HTTPSAddr().(*net.TCPAddr).Port
		plain := &http.Client{CheckRedirect: client.CheckRedirect}
		res, err := plain.Get(ts.httpURL("/@alice?x=1"))
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusMovedPermanently, res.StatusCode)
		require.Equal(t, "https://127.0.0.1:"+strconv.Itoa(port)+"/@alice?x=1", res.Header.Get("Location"))
		require.Empty(t, res.Header.Get("Strict-Transport-Security"), "HSTS only over TLS")

		res, err = plain.Post(ts.httpURL("/api/v1/login"), "application/json", strings.NewReader("{}"))
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusPermanentRedirect, res.StatusCode)

		code, body, _ := getBody(t, ts.httpURL("/healthz"))
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, "ok", body)
	})

	t.Run("chat websocket over tls", func(t *testing.T) {
		h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: client.Transport.(*http.Transport).TLSClientConfig.RootCAs, NextProtos: []string{"http/1.1"}}}}
		defer h1.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws, res, err := websocket.Dial(ctx, "wss://"+ts.HTTPSAddr().String()+"/api/v1/channels/alice/chat",
			&websocket.DialOptions{HTTPClient: h1})
		require.NoError(t, err)
		defer ws.CloseNow() //nolint:errcheck // test
		require.Equal(t, http.StatusSwitchingProtocols, res.StatusCode)
		// Chat hijacks an HTTP/1.1 connection (browsers do WebSockets over HTTP/1.1 here:
		// net/http's HTTP/2 does not offer extended CONNECT) through the HTTPS front.
		ws.CloseRead(ctx) // reads control frames (the pong) in the background
		require.NoError(t, ws.Ping(ctx))
	})

	t.Run("http1 still works", func(t *testing.T) {
		h1 := &http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: client.Transport.(*http.Transport).TLSClientConfig.RootCAs,
				NextProtos: []string{"http/1.1"}},
		}}
		defer h1.CloseIdleConnections()
		res, err := h1.Get(ts.httpsURL("/healthz"))
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, "HTTP/1.1", res.Proto)
		require.Equal(t, "max-age=31536000", res.Header.Get("Strict-Transport-Security"))
	})
}

func TestCertificateReload(t *testing.T) {
	dir := t.TempDir()
	first := testutil.MustWriteCert(t, dir, "site")
	certFile, keyFile := first.CertFile, first.KeyFile
	c, err := loadCertificate(certFile, keyFile, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	c.checkEvery = 0
	serial := func() *big.Int {
		got, err := c.get(nil)
		require.NoError(t, err)
		leaf, err := x509.ParseCertificate(got.Certificate[0])
		require.NoError(t, err)
		return leaf.SerialNumber
	}
	require.Equal(t, first.Cert.SerialNumber, serial())

	// A renewed pair is served without a restart.
	second := testutil.MustWriteCert(t, dir, "renewed")
	newCert, newKey := second.CertFile, second.KeyFile
	later := time.Now().Add(time.Minute)
	for _, p := range [][2]string{{newCert, certFile}, {newKey, keyFile}} {
		require.NoError(t, os.Rename(p[0], p[1]))
		require.NoError(t, os.Chtimes(p[1], later, later))
	}
	require.Equal(t, second.Cert.SerialNumber, serial())

	// A broken file keeps the last good pair in service.
	require.NoError(t, os.WriteFile(certFile, []byte("garbage"), 0o600))
	require.NoError(t, os.Chtimes(certFile, later.Add(time.Minute), later.Add(time.Minute)))
	require.Equal(t, second.Cert.SerialNumber, serial())

	_, err = loadCertificate(certFile, keyFile, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, "tls certificate")
}

func TestRTMPSPublish(t *testing.T) {
	testutil.RequireFFmpeg(t)
	ts, client := mustStartTLSServer(t, true)
	key := mustCreateUser(t, ts, "alice")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// ffmpeg does not verify the server's certificate unless asked (-tls_verify 1).
	url := "rtmps://" + ts.RTMPSAddr().String() + "/live/" + key
	pub := publish(t, ctx, url, defaultPublish)
	require.Eventually(t, func() bool {
		res, err := client.Get(ts.httpsURL("/api/v1/streams/alice"))
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, 15*time.Second, 100*time.Millisecond, "alice never went live")

	// Played back over RTMPS and over HTTPS.
	require.ElementsMatch(t, []string{"video:h264", "audio:aac"},
		codecs(ffprobe(t, "rtmps://"+ts.RTMPSAddr().String()+"/live/alice")))
	require.Eventually(t, func() bool {
		res, err := client.Get(ts.httpsURL("/hls/alice/" + tsPlaylist))
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode == http.StatusOK && strings.Count(string(b), "#EXTINF") >= 2
	}, 30*time.Second, 250*time.Millisecond)
	require.ElementsMatch(t, []string{"video:h264", "audio:aac"},
		codecs(ffprobe(t, ts.httpsURL("/hls/alice/"+tsPlaylist))))

	// An LL-HLS blocking reload over HTTP/2: the request waits for the next segment, and the
	// per-write deadline does not cut it.
	res, err := client.Get(ts.httpsURL("/hls/alice/" + fmp4Playlist))
	require.NoError(t, err)
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	next := mediaSequence(t, string(b)) + strings.Count(string(b), "#EXTINF")
	start := time.Now()
	res, err = client.Get(ts.httpsURL("/hls/alice/" + fmp4Playlist + "?_HLS_msn=" + strconv.Itoa(next)))
	require.NoError(t, err)
	b, err = io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "HTTP/2.0", res.Proto)
	require.Contains(t, string(b), "#EXT-X-PART")
	t.Logf("blocking reload for segment %d answered after %v", next, time.Since(start))

	// Plain RTMP still works beside it.
	require.ElementsMatch(t, []string{"video:h264", "audio:aac"}, codecs(ffprobe(t, ts.rtmpURL("/live/alice"))))
	require.False(t, pub.Exited(), pub.Output())
	require.NotContains(t, ts.log.String(), key)
}
