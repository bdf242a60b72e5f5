package app

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSecurityHeadersEverywhere checks the headers on the routes the app adds beside the
// web site (operator endpoints, replays) as well as the site's: nosniff, Referrer-Policy,
// a CSP whose scripts are 'self' only, and no framing except the embed pages.
func TestSecurityHeadersEverywhere(t *testing.T) {
	ts := mustStartServer(t, nil)
	mustCreateUser(t, ts, "alice")
	scriptSrc := regexp.MustCompile(`script-src ([^;]*)`)
	for _, path := range []string{"/", "/@alice", "/healthz", "/stat", "/stat.xsl", "/stat.js", "/metrics", "/api/v1/stats",
		"/api/v1/stats/streams/alice/history", "/vod/1/index.m3u8", "/api/v1/recordings/1",
		"/api/v1/channels/alice/recordings", "/hls/alice/index.m3u8", "/dash/alice/index.mpd", "/nope"} {
		t.Run(path, func(t *testing.T) {
			_, _, h := getBody(t, ts.httpURL(path))
			require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
			require.Equal(t, "same-origin", h.Get("Referrer-Policy"))
			require.Equal(t, "DENY", h.Get("X-Frame-Options"))
			csp := h.Get("Content-Security-Policy")
			require.Contains(t, csp, "frame-ancestors 'none'")
			m := scriptSrc.FindStringSubmatch(csp)
			require.NotNil(t, m, csp)
			require.Equal(t, "'self'", m[1])
			require.Empty(t, h.Get("Strict-Transport-Security"), "no HSTS on plain HTTP")
		})
	}
	_, _, h := getBody(t, ts.httpURL("/embed/@alice"))
	require.Empty(t, h.Get("X-Frame-Options"))
	require.Contains(t, h.Get("Content-Security-Policy"), "frame-ancestors *")
	require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
}
