package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/config"
	"github.com/onair/onair/internal/testutil"
)

// mustWriteCert writes a fresh self-signed certificate for 127.0.0.1 and localhost (and
// its key) as PEM files in dir, and returns their paths and the certificate.
func mustWriteCert(t *testing.T, dir, name string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err = x509.ParseCertificate(der)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile, cert
}

// mustStartTLSServer starts a server with HTTPS (and RTMPS when rtmps is set) on a
// certificate made now, and returns it with an HTTPS client that trusts it.
func mustStartTLSServer(t *testing.T, rtmps bool) (*testServer, *http.Client) {
	t.Helper()
	certFile, keyFile, cert := mustWriteCert(t, t.TempDir(), "onair")
	ts := mustStartServer(t, func(c *config.Config) {
		c.TLSCert, c.TLSKey, c.HTTPSAddr = certFile, keyFile, "127.0.0.1:0"
		if rtmps {
			c.RTMPSAddr = "127.0.0.1:0"
		}
	})
	pool := x509.NewCertPool()
	pool.AddCert(cert)
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
	certFile, keyFile, first := mustWriteCert(t, dir, "site")
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
	require.Equal(t, first.SerialNumber, serial())

	// A renewed pair is served without a restart.
	newCert, newKey, second := mustWriteCert(t, dir, "renewed")
	later := time.Now().Add(time.Minute)
	for _, p := range [][2]string{{newCert, certFile}, {newKey, keyFile}} {
		require.NoError(t, os.Rename(p[0], p[1]))
		require.NoError(t, os.Chtimes(p[1], later, later))
	}
	require.Equal(t, second.SerialNumber, serial())

	// A broken file keeps the last good pair in service.
	require.NoError(t, os.WriteFile(certFile, []byte("garbage"), 0o600))
	require.NoError(t, os.Chtimes(certFile, later.Add(time.Minute), later.Add(time.Minute)))
	require.Equal(t, second.SerialNumber, serial())

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

	// Plain RTMP still works beside it.
	require.ElementsMatch(t, []string{"video:h264", "audio:aac"}, codecs(ffprobe(t, ts.rtmpURL("/live/alice"))))
	require.False(t, pub.Exited(), pub.Output())
	require.NotContains(t, ts.log.String(), key)
}
