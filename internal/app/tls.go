package app

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// hstsValue is the Strict-Transport-Security header of HTTPS responses: a year, this host
// only (a subdomain may still be plain HTTP).
const hstsValue = "max-age=31536000"

// certReloadCheck is how often the certificate files are looked at for a change.
const certReloadCheck = 10 * time.Second

// certificate serves the configured key pair and reads it again when either file
// changes, so a renewed certificate is picked up without a restart. A file that fails to
// load keeps the previous pair in service.
type certificate struct {
	certFile, keyFile string
	logger            *slog.Logger
	checkEvery        time.Duration

	mu      sync.Mutex
	cert    *tls.Certificate
	mtime   [2]time.Time
	checked time.Time
	failing bool // the last reload failed (logged once)
}

// loadCertificate reads the pair once, so a bad file fails the start.
func loadCertificate(certFile, keyFile string, logger *slog.Logger) (*certificate, error) {
	c := &certificate{certFile: certFile, keyFile: keyFile, logger: logger, checkEvery: certReloadCheck}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certificate) reload() error {
	var mt [2]time.Time
	for i, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return fmt.Errorf("tls certificate: %w", err)
		}
		mt[i] = fi.ModTime()
	}
	if c.cert != nil && mt == c.mtime {
		return nil
	}
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls certificate: %w", err)
	}
	c.cert, c.mtime = &pair, mt
	return nil
}

// get is tls.Config.GetCertificate.
func (c *certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); now.Sub(c.checked) >= c.checkEvery {
		c.checked = now
		old := c.cert
		err := c.reload()
		switch {
		case err != nil && !c.failing:
			c.logger.Warn("tls certificate reload failed, the previous one stays", "err", err)
		case err == nil && c.cert != old:
			c.logger.Info("tls certificate reloaded")
		}
		c.failing = err != nil
	}
	return c.cert, nil
}

// tlsConfig is the server TLS configuration of HTTPS and RTMPS: TLS 1.2 or later with
// Go's default cipher suites. HTTPS adds "h2" to NextProtos itself (net/http).
func (c *certificate) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get}
}

// hsts adds Strict-Transport-Security to responses sent over TLS.
func hsts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", hstsValue)
		}
		next.ServeHTTP(w, r)
	})
}

// redirectToHTTPS answers plain-HTTP requests with a redirect to the same URL on the
// HTTPS port (301 for GET and HEAD, 308 otherwise, so a method and body are kept).
// /healthz still answers on plain HTTP for probes.
func redirectToHTTPS(httpsPort int, healthz http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			healthz.ServeHTTP(w, r)
			return
		}
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		if host == "" {
			http.Error(w, "Use HTTPS.", http.StatusBadRequest)
			return
		}
		if httpsPort != 443 {
			host = net.JoinHostPort(host, strconv.Itoa(httpsPort))
		} else if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		status := http.StatusMovedPermanently
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			status = http.StatusPermanentRedirect
		}
		http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), status)
	})
}

// cspStat is the Content-Security-Policy of /stat and its stylesheet: nginx-rtmp's
// stat.xsl carries an inline <style>, which it allows; inline scripts stay refused (the
// click-to-expand rows work from /stat.js instead of nginx-rtmp's inline onclick).
const cspStat = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; object-src 'none'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func statCSP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", cspStat)
		next.ServeHTTP(w, r)
	})
}
