package web

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
)

// evil breaks out of text, of attributes and of script contexts if anything is not
// escaped.
const evil = `<script>alert(1)</script>"><img src=x onerror=alert(2)>'`

// requireEscaped checks that a page carries the payload only escaped.
func requireEscaped(t *testing.T, body string) {
	t.Helper()
	require.NotContains(t, body, "<script>alert")
	require.NotContains(t, body, "<img src=x")
	require.NotContains(t, body, "onerror=alert(2)>")
	require.NotContains(t, body, "alert(1)</")
}

func TestServerEscaping(t *testing.T) {
	t.Parallel()
	e := mustEnv(t, false)
	ctx := context.Background()
	boss := e.mustFind("boss")
	mallory, bob := e.user("mallory"), e.user("bob")
	e.channel(mallory, evil, evil+"\nsecond line", "tag")
	_, err := e.settings.UpdateSettings(ctx, boss, onair.Settings{SiteName: evil[:50], RegistrationOpen: true})
	require.NoError(t, err)
	v, err := e.comments.ChannelVideo(ctx, "mallory")
	require.NoError(t, err)
	_, err = e.comments.CreateComment(ctx, mallory, v.ID, evil)
	require.NoError(t, err)
	require.NoError(t, e.channels.Follow(ctx, bob, "mallory"))
	require.NoError(t, e.notes.Notify(ctx, []int64{bob.ID}, onair.Notification{Kind: "live", Channel: "mallory", Text: evil}))
	e.live.streams = []onair.LiveStream{
		{Channel: "mallory", StartedAt: now, VideoCodec: evil, AudioCodec: evil},
		{Channel: evil, StartedAt: now}, // a name that can not exist, straight from the directory
	}

	pages := []struct {
		c    *client
		path string
	}{
		{e.anon(), "/"},
		{e.anon(), "/@mallory"},
		{e.anon(), "/embed/@mallory"},
		{e.anon(), "/@" + url.PathEscape(evil)},
		{e.anon(), "/embed/@" + url.PathEscape(evil)},
		{e.anon(), "/tags/tag"},
		{e.anon(), "/tags/" + url.PathEscape(strings.ToLower(evil))},
		{e.anon(), "/search?q=" + url.QueryEscape(evil)},
		{e.anon(), "/search?q=alert"},
		{e.anon(), "/login?next=" + url.QueryEscape("/"+evil)},
		{e.anon(), "/nope" + url.PathEscape(evil)},
		{e.as(bob), "/"},
		{e.as(bob), "/@mallory"},
		{e.as(bob), "/notifications"},
		{e.as(mallory), "/dashboard"},
		{e.as(mallory), "/@mallory"},
		{e.as(boss), "/admin"},
		{e.as(boss), "/@mallory"},
	}
	for _, p := range pages {
		t.Run(p.path, func(t *testing.T) {
			body := p.c.do("GET", p.path, nil).Body.String()
			requireEscaped(t, body)
		})
	}

	t.Run("payload shows as text", func(t *testing.T) {
		body := e.as(bob).do("GET", "/@mallory", nil).Body.String()
		require.Contains(t, body, "<h1>&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;&#39;</h1>")
		require.Contains(t, body, `<p class="comment-text">&lt;script&gt;`)
		require.Contains(t, body, `<p class="description">&lt;script&gt;`)
		require.Contains(t, body, "<title>&lt;script&gt;")
		body = e.as(bob).do("GET", "/notifications", nil).Body.String()
		require.Contains(t, body, `<a href="/@mallory">&lt;script&gt;`)
		body = e.as(mallory).do("GET", "/dashboard", nil).Body.String()
		require.Contains(t, body, `value="&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;&#39;"`)
	})

	t.Run("api", func(t *testing.T) {
		for _, path := range []string{"/api/v1/channels/mallory", "/api/v1/streams", "/api/v1/search?q=alert",
			"/api/v1/videos/" + strconv.FormatInt(v.ID, 10) + "/comments", "/api/v1/channels/" + url.PathEscape(evil)} {
			rec := e.as(bob).do("GET", path, nil)
			require.NotContains(t, rec.Body.String(), "<script>", path)
			require.NotContains(t, rec.Body.String(), "<img", path)
		}
		got := decodeBody[channelJSON](t, e.anon().do("GET", "/api/v1/channels/mallory", nil))
		require.Equal(t, evil, got.Title, "JSON carries the text itself")
	})

	t.Run("usernames cannot carry markup", func(t *testing.T) {
		requireAPIError(t, e.anon().do("POST", "/api/v1/register", map[string]string{"username": evil, "password": "long enough"}),
			400, "invalid", "")
		requireAPIError(t, e.as(mallory).do("PATCH", "/api/v1/me/channel", map[string]any{"tags": []string{evil}}),
			400, "invalid", "")
	})
}
