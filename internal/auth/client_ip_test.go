package auth_test

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/auth"
)

func TestClientIP(t *testing.T) {
	cases := []struct {
		name       string
		remote     string
		xff        []string
		trustProxy bool
		want       string
	}{
		{name: "remote ipv4", remote: "192.0.2.1:5555", want: "192.0.2.1"},
		{name: "remote ipv6", remote: "[2001:db8::1]:5555", want: "2001:db8::1"},
		{name: "remote mapped ipv4", remote: "[::ffff:192.0.2.1]:5555", want: "192.0.2.1"},
		{name: "remote without port", remote: "192.0.2.1", want: "192.0.2.1"},
		{name: "remote not an ip", remote: "pipe", want: "pipe"},
		{name: "xff ignored without trust", remote: "10.0.0.1:1", xff: []string{"198.51.100.7"}, want: "10.0.0.1"},
		{name: "xff single", remote: "10.0.0.1:1", xff: []string{"198.51.100.7"}, trustProxy: true, want: "198.51.100.7"},
		{name: "xff last hop", remote: "10.0.0.1:1", xff: []string{"6.6.6.6, 198.51.100.7"}, trustProxy: true, want: "198.51.100.7"},
		{name: "xff last line", remote: "10.0.0.1:1", xff: []string{"6.6.6.6", "198.51.100.7"}, trustProxy: true, want: "198.51.100.7"},
		{name: "xff ipv6", remote: "10.0.0.1:1", xff: []string{"2001:db8::7"}, trustProxy: true, want: "2001:db8::7"},
		{name: "xff with port", remote: "10.0.0.1:1", xff: []string{"198.51.100.7:4711"}, trustProxy: true, want: "198.51.100.7"},
		{name: "xff garbage", remote: "10.0.0.1:1", xff: []string{"1.2.3.4, nonsense"}, trustProxy: true, want: "10.0.0.1"},
		{name: "xff empty", remote: "10.0.0.1:1", xff: []string{""}, trustProxy: true, want: "10.0.0.1"},
		{name: "no xff behind proxy", remote: "10.0.0.1:1", trustProxy: true, want: "10.0.0.1"},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = ca.remote
			for _, v := range ca.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			require.Equal(t, ca.want, auth.ClientIP(r, ca.trustProxy))
		})
	}
}
