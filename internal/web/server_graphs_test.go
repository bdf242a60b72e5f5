package web

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

func TestServerGraphAsset(t *testing.T) {
	t.Parallel()
	withGraphs := func(present bool) func(*Server) {
		return func(s *Server) {
			m := staticFS(t, true)
			delete(m, graphAssetPath)
			delete(m, "vendor/uplot.min.css")
			if present {
				m[graphAssetPath] = &fstest.MapFile{Data: []byte("/* uPlot stand-in */ var uPlot = function () {};\n")}
				m["vendor/uplot.min.css"] = &fstest.MapFile{Data: []byte(".uplot {}\n")}
			}
			s.static = m
		}
	}
	pages := []struct {
		path, user, src string
	}{
		{"/dashboard", "alice", `data-graphs="stream" data-src="/api/v1/stats/streams/alice/history"`},
		{"/admin", "boss", `data-graphs="server" data-src="/api/v1/stats/history"`},
	}

	t.Run("missing", func(t *testing.T) {
		e, _ := seeded(t, withGraphs(false))
		for _, p := range pages {
			u, err := e.users.FindUserByUsername(context.Background(), p.user)
			require.NoError(t, err)
			body := requireStatus(t, e.as(u).do("GET", p.path, nil), 200)
			require.Contains(t, body, "graph asset missing: run make build", p.path)
			require.NotContains(t, body, "uplot", p.path)
			require.NotContains(t, body, "graphs.js", p.path)
			require.NotContains(t, body, `id="graphs"`, p.path)
		}
		require.Equal(t, 404, e.anon().do("GET", "/static/"+graphAssetPath, nil).Code)
	})

	t.Run("present", func(t *testing.T) {
		e, _ := seeded(t, withGraphs(true))
		for _, p := range pages {
			u, err := e.users.FindUserByUsername(context.Background(), p.user)
			require.NoError(t, err)
			body := requireStatus(t, e.as(u).do("GET", p.path, nil), 200)
			require.NotContains(t, body, "graph asset missing", p.path)
			require.Contains(t, body, `<script src="/static/vendor/uplot.iife.min.js?v=`, p.path)
			require.Contains(t, body, `<script src="/static/graphs.js?v=`, p.path)
			require.Contains(t, body, `<link rel="stylesheet" href="/static/vendor/uplot.min.css?v=`, p.path)
			require.Contains(t, body, p.src, p.path)
		}
		rec := e.anon().do("GET", "/static/"+graphAssetPath, nil)
		require.Equal(t, 200, rec.Code)
		require.Equal(t, "text/javascript; charset=utf-8", rec.Header().Get("Content-Type"))
	})
}
