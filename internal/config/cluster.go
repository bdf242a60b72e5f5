package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
)

var nodeName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Clustered reports whether the node runs in a cluster (nats is set).
func (c *Config) Clustered() bool { return c.NATS != "" }

// validateCluster checks the cluster settings and fills their defaults. Without nats they
// are ignored.
func (c *Config) validateCluster() []error {
	if !c.Clustered() {
		return nil
	}
	var errs []error
	for _, u := range strings.Split(c.NATS, ",") {
		if !strings.HasPrefix(strings.TrimSpace(u), "nats://") && !strings.HasPrefix(strings.TrimSpace(u), "tls://") {
			errs = append(errs, errors.New("nats: must be nats://host:port (or tls://), comma-separated"))
			break
		}
	}
	if strings.HasPrefix(c.DB, "sqlite:") {
		errs = append(errs, errors.New("db: a cluster (nats set) needs a shared postgres:// or mysql:// database"))
	}
	if c.Node == "" {
		h, err := os.Hostname()
		if err != nil {
			errs = append(errs, errors.New("node: must be set (the host name is unknown)"))
		}
		c.Node = strings.ToLower(strings.SplitN(h, ".", 2)[0])
	}
	if !nodeName.MatchString(c.Cluster) {
		errs = append(errs, fmt.Errorf("cluster: %q must be 1-63 of [a-z0-9_-], starting with a letter or digit", c.Cluster))
	}
	if c.Node != "" && !nodeName.MatchString(c.Node) {
		errs = append(errs, fmt.Errorf("node: %q must be 1-63 of [a-z0-9_-], starting with a letter or digit", c.Node))
	}
	for _, a := range []struct {
		key    string
		v      *string
		listen string
	}{{"advertise_rtmp", &c.AdvertiseRTMP, c.RTMPAddr}, {"advertise_http", &c.AdvertiseHTTP, c.HTTPAddr}} {
		if *a.v == "" {
			if h, _, err := net.SplitHostPort(a.listen); err == nil && h != "" && !net.ParseIP(h).IsUnspecified() {
				*a.v = a.listen
			} else {
				errs = append(errs, fmt.Errorf("%s: must be set (host:port other nodes reach this node on)", a.key))
				continue
			}
		}
		h, p, err := net.SplitHostPort(*a.v)
		if err != nil || h == "" || p == "" || p == "0" {
			errs = append(errs, fmt.Errorf("%s: %q is not host:port", a.key, *a.v))
		}
	}
	return errs
}
