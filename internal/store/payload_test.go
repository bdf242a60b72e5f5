package store_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
)

// payloads are stored verbatim: SQL is parameterised, and escaping for HTML is the web's
// job.
var payloads = []string{
	`<script>alert("xss")</script>`,
	`<img src=x onerror=alert(1)>`,
	`'; DROP TABLE users; --`,
	`" OR "1"="1`,
	`\'; SELECT 1; -- \\`,
	`$1 ? %s %% _ ! {{.}}`,
	"emoji 🎉 and ünïcödé",
}

func TestPayloadsRoundTrip(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		boss := e.mustUser(t, "boss")
		alice := e.mustUser(t, "alice")
		video, err := e.comments.ChannelVideo(ctx, "boss")
		require.NoError(t, err)

		for _, p := range payloads {
			t.Run(p, func(t *testing.T) {
				info, err := e.channels.UpdateChannel(ctx, alice, onair.ChannelUpdate{Title: &p, Description: &p})
				require.NoError(t, err)
				require.Equal(t, p, info.Title)
				info, err = e.channels.ChannelInfo(ctx, "alice")
				require.NoError(t, err)
				require.Equal(t, p, info.Title)
				require.Equal(t, p, info.Description)
				found, err := e.channels.SearchChannels(ctx, p, 10)
				require.NoError(t, err)
				require.Equal(t, []string{"alice"}, names(found))

				m := &onair.ChatMessage{Channel: "boss", UserID: alice.ID, Text: p}
				require.NoError(t, e.chat.SaveMessage(ctx, m))
				msgs, err := e.chat.RecentMessages(ctx, "boss", 1)
				require.NoError(t, err)
				require.Equal(t, p, msgs[0].Text)

				c, err := e.comments.CreateComment(ctx, alice, video.ID, p)
				require.NoError(t, err)
				c, err = e.comments.UpdateComment(ctx, alice, c.ID, p+p)
				require.NoError(t, err)
				all, err := e.comments.Comments(ctx, video.ID, 0, 1000)
				require.NoError(t, err)
				require.Equal(t, c, all[len(all)-1])
				require.Equal(t, p+p, c.Text)

				require.NoError(t, e.notes.Notify(ctx, []int64{alice.ID}, onair.Notification{Kind: "live", Channel: "boss", Text: p}))
				notes, err := e.notes.Notifications(ctx, alice.ID, 1)
				require.NoError(t, err)
				require.Equal(t, p, notes[0].Text)

				st, err := e.settings.UpdateSettings(ctx, boss, onair.Settings{SiteName: p})
				require.NoError(t, err)
				require.Equal(t, p, st.SiteName)
				st, err = e.settings.Settings(ctx)
				require.NoError(t, err)
				require.Equal(t, p, st.SiteName)

				_, err = e.channels.UpdateChannel(ctx, alice, onair.ChannelUpdate{Tags: &[]string{p}})
				requireCode(t, err, onair.EINVALID)
				got, err := e.channels.ChannelsByTag(ctx, p, 10)
				require.NoError(t, err)
				require.Empty(t, got)
				_, err = e.users.Authenticate(ctx, p, p)
				requireCode(t, err, onair.EUNAUTHORIZED)
				_, err = e.users.FindUserByUsername(ctx, p)
				requireCode(t, err, onair.ENOTFOUND)
				_, err = e.chat.DeleteMessage(ctx, boss, m.ID)
				require.NoError(t, err)
			})
		}
		require.Equal(t, 2, e.count(t, `SELECT COUNT(*) FROM users`))
	})
}
