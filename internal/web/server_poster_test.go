package web

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// posterSet is a PosterSource with posters for the ids it holds.
type posterSet map[int64]bool

func (p posterSet) PosterPath(_ context.Context, id int64) string {
	if !p[id] {
		return ""
	}
	return "/vod/" + strconv.FormatInt(id, 10) + "/poster.jpg"
}

func TestReplayPosters(t *testing.T) {
	t.Parallel()
	posters := posterSet{}
	e := mustEnv(t, false, func(s *Server) { s.Posters = posters })
	e.user("alice")
	with := e.mustRecording("alice", "With poster", now.Add(-3*time.Hour), 245*time.Second)
	without := e.mustRecording("alice", "Without poster", now.Add(-2*time.Hour), 65*time.Second)
	posters[with.ID] = true

	resp := e.anon().do("GET", "/@alice", nil)
	require.Contains(t, resp.Header().Get("Content-Security-Policy"), "img-src 'self'")
	body := requireStatus(t, resp, http.StatusOK)
	require.Contains(t, body, `<img class="poster-img" src="/vod/`+strconv.FormatInt(with.ID, 10)+`/poster.jpg" alt=""`)
	require.NotContains(t, body, `/vod/`+strconv.FormatInt(without.ID, 10)+`/poster.jpg`)
	require.Contains(t, body, `<span class="poster-duration">4:05</span>`)
	require.Contains(t, body, `<span class="poster-duration">1:05</span>`)
	require.Contains(t, body, `class="poster-icon"`, "the replay without a poster keeps the neutral box")
}
