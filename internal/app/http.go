package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/onair/onair/internal/web"
)

// maxHeaderBytes bounds a request's header block (net/http answers 431 beyond it).
const maxHeaderBytes = 64 << 10

// netState is what the HTTP(S) front and the connection limits hold (http.go, tls.go,
// netlimit.go).
type netState struct {
	cert      *certificate
	httpLimit *connLimit
	rtmpLimit *connLimit
	https     *http.Server
	httpsLn   net.Listener
}

// prepareNet loads the certificate and sets up the connection limits, and hands RTMP
// its RTMPS listener and limit. It runs before the RTMP server starts.
func (s *Server) prepareNet() error {
	c := s.Config
	s.net.httpLimit = newConnLimit("http", c.HTTPMaxConnsPerIP, c.ConnLimitExempt, s.Logger.With("component", "http"))
	s.net.rtmpLimit = newConnLimit("rtmp", c.RTMPMaxConnsPerIP, c.ConnLimitExempt, s.Logger.With("component", "rtmp"))
	s.rtmp.WrapListener = s.net.rtmpLimit.wrap
	if !c.TLS() {
		return nil
	}
	cert, err := loadCertificate(c.TLSCert, c.TLSKey, s.Logger.With("component", "tls"))
	if err != nil {
		return err
	}
	s.net.cert = cert
	if c.RTMPSAddr != "" {
		s.rtmp.TLSAddr = c.RTMPSAddr
		s.rtmp.TLSConfig = cert.tlsConfig()
	}
	return nil
}

// newHTTPServer returns an http.Server with the configured timeouts. There is no
// server-wide WriteTimeout: writeStall bounds each write instead.
func (s *Server) newHTTPServer(h http.Handler) *http.Server {
	c := s.Config
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.HTTPHeaderTimeout.D(),
		ReadTimeout:       c.HTTPBodyTimeout.D(),
		IdleTimeout:       c.HTTPIdleTimeout.D(),
		MaxHeaderBytes:    maxHeaderBytes,
		// HTTP/2 connections that take no bytes, or answer no ping, are closed.
		HTTP2: &http.HTTP2Config{
			WriteByteTimeout: c.HTTPWriteTimeout.D(),
			SendPingTimeout:  c.HTTPIdleTimeout.D() / 2,
			PingTimeout:      15 * time.Second,
		},
		ErrorLog: slog.NewLogLogger(s.Logger.With("component", "http").Handler(), slog.LevelWarn),
	}
}

// startHTTP serves the site on HTTPAddr and, with a certificate, on HTTPSAddr (HTTP/2
// and HTTP/1.1, HSTS); plain HTTP then redirects to HTTPS.
func (s *Server) startHTTP() error {
	c := s.Config
	site := writeStall(c.HTTPWriteTimeout.D(), hsts(web.SecurityHeaders(s.routes())))
	plain := site
	if c.TLS() {
		ln, err := net.Listen("tcp", c.HTTPSAddr)
		if err != nil {
			return fmt.Errorf("listen https: %w", err)
		}
		s.net.httpsLn = s.net.httpLimit.wrap(ln)
		s.net.https = s.newHTTPServer(site)
		s.net.https.TLSConfig = s.net.cert.tlsConfig()
		s.serve("https", func() error { return s.net.https.ServeTLS(s.net.httpsLn, "", "") })
		plain = web.SecurityHeaders(redirectToHTTPS(ln.Addr().(*net.TCPAddr).Port, s.web))
	}
	ln, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen http: %w", err)
	}
	s.httpLn = s.net.httpLimit.wrap(ln)
	s.http = s.newHTTPServer(plain)
	s.serve("http", func() error { return s.http.Serve(s.httpLn) })
	return nil
}

func (s *Server) serve(name string, run func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := run(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error(name+" server stopped", "err", err)
		}
	}()
}

// HTTPSAddr returns the bound HTTPS address, or nil without TLS.
func (s *Server) HTTPSAddr() net.Addr {
	if s.net.httpsLn == nil {
		return nil
	}
	return s.net.httpsLn.Addr()
}

// RTMPSAddr returns the bound RTMPS address, or nil without one.
func (s *Server) RTMPSAddr() net.Addr { return s.rtmp.TLSListenAddr() }

// closeHTTPS drains the HTTPS server like the HTTP one.
func (s *Server) closeHTTPS(timeout time.Duration) {
	if s.net.https == nil {
		if s.net.httpsLn != nil {
			_ = s.net.httpsLn.Close()
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.net.https.Shutdown(ctx); err != nil {
		s.Logger.Warn("https shutdown", "err", err)
		_ = s.net.https.Close()
	}
}
