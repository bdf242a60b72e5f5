package testutil

import (
	"context"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// NATSURL returns the URL of the test NATS server (ONAIR_TEST_NATS_URL, default
// nats://127.0.0.1:4222, JetStream on) and a fresh name for the test to prefix its
// subjects and buckets with, so that tests sharing the server never see each other. It
// skips the test when the server is unreachable, or fails it when ONAIR_REQUIRE_DBS=1.
func NATSURL(tb testing.TB) (natsURL, unique string) {
	tb.Helper()
	natsURL = envOr("ONAIR_TEST_NATS_URL", "nats://127.0.0.1:4222")
	u, err := url.Parse(natsURL)
	if err == nil {
		var c net.Conn
		c, err = net.DialTimeout("tcp", u.Host, 3*time.Second)
		if err == nil {
			c.Close()
		}
	}
	if err != nil {
		requireDB(tb, "NATS", err)
		return "", ""
	}
	return natsURL, uniqueName()
}

// NATSServer is a nats-server of the test's own, which the test may stop and start again
// (on the same port) to see clients reconnect.
type NATSServer struct {
	// URL is the server's nats:// URL.
	URL  string
	tb   testing.TB
	bin  string
	args []string
	proc *Process
}

// StartNATSServer starts a nats-server on a free loopback port with the extra arguments
// (such as "-js", "-sd", DIR). It skips the test when nats-server is not installed, or
// fails it when ONAIR_REQUIRE_DBS=1. The test's cleanup stops it.
func StartNATSServer(tb testing.TB, extra ...string) *NATSServer {
	tb.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		requireDB(tb, "nats-server", err)
		return nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	s := &NATSServer{URL: "nats://" + addr, tb: tb, bin: bin, args: append([]string{"-a", "127.0.0.1", "-p", port}, extra...)}
	s.Start()
	return s
}

// Start starts the server (again) and waits until it accepts connections.
func (s *NATSServer) Start() {
	s.tb.Helper()
	s.proc = Start(s.tb, context.Background(), s.bin, s.args...)
	addr := strings.TrimPrefix(s.URL, "nats://")
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.tb.Fatalf("nats-server did not start: %v: %s", err, s.proc.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server.
func (s *NATSServer) Stop() { s.proc.Stop() }
