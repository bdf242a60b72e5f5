package testutil

import (
	"net"
	"net/url"
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
