package dash

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
		{"/dash/alice/index.mpd", "alice", RequestManifest},
		{"/dash/alice/index.mpd?s=abcdefgh", "alice", RequestManifest},
		{"/dash/alice/0123456789abcdef-i0-t1.mp4", "alice", RequestInit},
		{"/dash/alice/0123456789abcdef-7-t0.m4s", "alice", RequestSegment},
		{"/dash/time", "", RequestTime},
		{"/alice/index.mpd", "alice", RequestManifest},
		{"/dash/alice/x.m4s", "alice", RequestOther},
		{"/dash/NotAUser/index.mpd", "", RequestOther},
	}
	for _, ca := range cases {
		t.Run(ca.path, func(t *testing.T) {
			ch, kind := requestKind(httptest.NewRequest(http.MethodGet, ca.path, nil))
			require.Equal(t, ca.channel, ch)
			require.Equal(t, ca.kind, kind)
		})
	}
}

type fakeViewers struct{ touches []string }

func (f *fakeViewers) Touch(channel, id, remoteAddr, userAgent string, ttl time.Duration) {
	f.touches = append(f.touches, channel+"|"+id+"|"+remoteAddr+"|"+userAgent+"|"+ttl.String())
}

func TestObserveTouchesManifests(t *testing.T) {
	fv := &fakeViewers{}
	s := &Server{CMAF: nil, Viewers: fv, MinimumUpdatePeriod: time.Second, SegmentTarget: 2 * time.Second}
	for _, ca := range []struct {
		path   string
		status int
	}{
		{"/dash/alice/index.mpd?s=pagesession1", 200},
		{"/dash/alice/index.mpd", 200},
		{"/dash/alice/index.mpd", 404},
		{"/dash/alice/0123456789abcdef-7-t0.m4s", 200},
	} {
		r := httptest.NewRequest(http.MethodGet, ca.path, nil)
		r.Header.Set("User-Agent", "ua")
		s.observe(r, &statusWriter{status: ca.status}, time.Millisecond)
	}
	require.Equal(t, []string{
		"alice|pagesession1|192.0.2.1:1234|ua|6s",
		"alice||192.0.2.1:1234|ua|6s",
	}, fv.touches)
}
