package hls

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRequestKind(t *testing.T) {
	cases := []struct {
		path, channel, kind string
	}{
		{"/hls/alice/index.m3u8", "alice", RequestMultivariant},
		{"/hls/alice/stream.m3u8", "alice", RequestPlaylist},
		{"/hls/alice/stream.m3u8?s=abcdefgh&_HLS_msn=3&_HLS_part=1", "alice", RequestBlocking},
		{"/hls/alice/0123456789abcdef-i0.mp4", "alice", RequestInit},
		{"/hls/alice/0123456789abcdef-12.m4s", "alice", RequestSegment},
		{"/hls/alice/0123456789abcdef-p40.m4s", "alice", RequestPart},
		{"/hls/alice/ts/index.m3u8", "alice", RequestPlaylist},
		{"/hls/alice/ts/0123456789abcdef-3.ts", "alice", RequestSegment},
		{"/alice/stream.m3u8", "alice", RequestPlaylist},
		{"/hls/alice/other.txt", "alice", RequestOther},
		{"/hls/Not-A-User/index.m3u8", "", RequestOther},
		{"/hls/", "", RequestOther},
	}
	for _, ca := range cases {
		t.Run(ca.path, func(t *testing.T) {
			ch, kind := requestKind(httptest.NewRequest(http.MethodGet, ca.path, nil))
			require.Equal(t, ca.channel, ch)
			require.Equal(t, ca.kind, kind)
		})
	}
}

// fakeViewers records Touch calls.
type fakeViewers struct {
	touches []string
}

func (f *fakeViewers) SessionID(id string) string {
	if id == "pagesession1" {
		return id
	}
	return "newsession123"
}

func (f *fakeViewers) Touch(channel, id, remoteAddr, userAgent string, ttl time.Duration) {
	f.touches = append(f.touches, channel+"|"+id+"|"+remoteAddr+"|"+userAgent+"|"+ttl.String())
}

func TestWithSession(t *testing.T) {
	mv := []byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nstream.m3u8\n")
	s := &Server{}
	r := httptest.NewRequest(http.MethodGet, "/hls/alice/index.m3u8", nil)
	require.Equal(t, mv, s.withSession(mv, r), "without Viewers, no session ids")

	s.Viewers = &fakeViewers{}
	out := s.withSession(mv, r)
	require.Equal(t, "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nstream.m3u8?s=newsession123\n", string(out))
	require.Equal(t, "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nstream.m3u8\n", string(mv), "the cached bytes are not changed")

	r = httptest.NewRequest(http.MethodGet, "/hls/alice/index.m3u8?s=pagesession1", nil)
	out = s.withSession([]byte("#EXTM3U\nts/index.m3u8\n"), r)
	require.Equal(t, "#EXTM3U\nts/index.m3u8?s=pagesession1\n", string(out), "a page's own id is kept")
}

func TestObserveTouchesMediaPlaylists(t *testing.T) {
	fv := &fakeViewers{}
	type obs struct {
		channel, kind string
		status        int
		bytes         int64
	}
	var got []obs
	s := &Server{Viewers: fv, OnRequest: func(channel, kind string, status int, bytes int64, _ time.Duration) {
		got = append(got, obs{channel, kind, status, bytes})
	}}
	cases := []struct {
		path   string
		status int
		target time.Duration
	}{
		{"/hls/alice/index.m3u8", 200, 0},
		{"/hls/alice/stream.m3u8?s=pagesession1", 200, 2 * time.Second},
		{"/hls/alice/stream.m3u8?s=pagesession1&_HLS_msn=9", 200, 2 * time.Second},
		{"/hls/alice/ts/index.m3u8", 200, time.Second},
		{"/hls/alice/ts/index.m3u8", 404, 0},
		{"/hls/alice/0123456789abcdef-12.m4s", 200, 0},
	}
	for _, ca := range cases {
		r := httptest.NewRequest(http.MethodGet, ca.path, nil)
		r.Header.Set("User-Agent", "ua")
		s.observe(r, &statusWriter{status: ca.status, bytes: 10, target: ca.target}, time.Millisecond)
	}
	require.Equal(t, []string{
		"alice|pagesession1|192.0.2.1:1234|ua|6s",
		"alice|pagesession1|192.0.2.1:1234|ua|6s",
		"alice||192.0.2.1:1234|ua|3s",
	}, fv.touches)
	require.Len(t, got, len(cases))
	require.Equal(t, obs{"alice", RequestBlocking, 200, 10}, got[2])
}
