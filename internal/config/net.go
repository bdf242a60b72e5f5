package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Net holds the settings that face the network: TLS (HTTPS and RTMPS), HTTP timeouts
// and connection limits. It is embedded in Config, so its keys sit at the top level.
type Net struct {
	// TLSCert and TLSKey are PEM files (certificate chain and private key). With both set,
	// HTTPS (HTTP/2) serves on HTTPSAddr and plain HTTP on HTTPAddr redirects to it
	// (except /healthz); RTMPS serves on RTMPSAddr when that is set. The files are read
	// again when they change, so a renewed certificate needs no restart.
	TLSCert string `toml:"tls_cert"`
	TLSKey  string `toml:"tls_key"`
	// HTTPSAddr is the HTTPS listen address (used only with TLSCert and TLSKey).
	HTTPSAddr string `toml:"https_addr"`
	// RTMPSAddr is the RTMPS (RTMP over TLS) listen address; empty: no RTMPS. Needs
	// TLSCert and TLSKey.
	RTMPSAddr string `toml:"rtmps_addr"`

	// HTTPHeaderTimeout bounds the reading of a request's headers (slowloris).
	HTTPHeaderTimeout Duration `toml:"http_header_timeout"`
	// HTTPBodyTimeout bounds the reading of a whole request, headers and body.
	HTTPBodyTimeout Duration `toml:"http_body_timeout"`
	// HTTPWriteTimeout closes a connection whose client takes no response bytes for that
	// long. It bounds each write, not the whole response, so long downloads and LL-HLS
	// blocking requests are not cut.
	HTTPWriteTimeout Duration `toml:"http_write_timeout"`
	// HTTPIdleTimeout closes a keep-alive connection that sends no request for that long.
	HTTPIdleTimeout Duration `toml:"http_idle_timeout"`

	// HTTPMaxConnsPerIP and RTMPMaxConnsPerIP bound the open connections of one client
	// address (HTTP and HTTPS together; RTMP and RTMPS together). 0: no bound.
	HTTPMaxConnsPerIP int `toml:"http_max_conns_per_ip"`
	RTMPMaxConnsPerIP int `toml:"rtmp_max_conns_per_ip"`
	// ConnLimitExempt lists the networks (CIDR) the connection limits do not apply to.
	// Default: loopback (a reverse proxy, the load generator).
	ConnLimitExempt []string `toml:"conn_limit_exempt"`
}

func defaultNet() Net {
	return Net{
		HTTPSAddr:         ":8443",
		HTTPHeaderTimeout: Duration(10 * time.Second),
		HTTPBodyTimeout:   Duration(30 * time.Second),
		HTTPWriteTimeout:  Duration(30 * time.Second),
		HTTPIdleTimeout:   Duration(120 * time.Second),
		HTTPMaxConnsPerIP: 256,
		RTMPMaxConnsPerIP: 64,
		ConnLimitExempt:   []string{"127.0.0.0/8", "::1/128"},
	}
}

// TLS reports whether a certificate is configured.
func (n *Net) TLS() bool { return n.TLSCert != "" && n.TLSKey != "" }

func (n *Net) validate() []error {
	var errs []error
	if (n.TLSCert == "") != (n.TLSKey == "") {
		errs = append(errs, errors.New("tls_cert, tls_key: set both or neither"))
	}
	if n.TLS() {
		if _, _, err := net.SplitHostPort(n.HTTPSAddr); err != nil {
			errs = append(errs, fmt.Errorf("https_addr: %q is not host:port", n.HTTPSAddr))
		}
	}
	if n.RTMPSAddr != "" {
		if _, _, err := net.SplitHostPort(n.RTMPSAddr); err != nil {
			errs = append(errs, fmt.Errorf("rtmps_addr: %q is not host:port", n.RTMPSAddr))
		}
		if !n.TLS() {
			errs = append(errs, errors.New("rtmps_addr: needs tls_cert and tls_key"))
		}
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"http_header_timeout", n.HTTPHeaderTimeout}, {"http_body_timeout", n.HTTPBodyTimeout},
		{"http_write_timeout", n.HTTPWriteTimeout}, {"http_idle_timeout", n.HTTPIdleTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive", d.key))
		}
	}
	if n.HTTPBodyTimeout > 0 && n.HTTPBodyTimeout < n.HTTPHeaderTimeout {
		errs = append(errs, errors.New("http_body_timeout: must not be shorter than http_header_timeout"))
	}
	if n.HTTPMaxConnsPerIP < 0 {
		errs = append(errs, errors.New("http_max_conns_per_ip: must not be negative"))
	}
	if n.RTMPMaxConnsPerIP < 0 {
		errs = append(errs, errors.New("rtmp_max_conns_per_ip: must not be negative"))
	}
	for _, p := range n.ConnLimitExempt {
		if _, err := netip.ParsePrefix(p); err != nil {
			errs = append(errs, fmt.Errorf("conn_limit_exempt: %q is not a network like 10.0.0.0/8", p))
		}
	}
	return errs
}
