package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
)

func TestChatServiceSaveMessage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		e.mustUser(t, "alice")
		bob := e.mustUser(t, "bob")

		m := &onair.ChatMessage{Channel: "alice", UserID: bob.ID, Text: "  hello  "}
		require.NoError(t, e.chat.SaveMessage(ctx, m))
		require.NotZero(t, m.ID)
		require.Equal(t, "hello", m.Text)
		require.Equal(t, "bob", m.User)
		require.Equal(t, startTime, m.CreatedAt)

		cases := []struct {
			name string
			m    *onair.ChatMessage
			code string
			msg  string
		}{
			{name: "nil", code: onair.EINVALID, msg: "Message required."},
			{name: "empty", m: &onair.ChatMessage{Channel: "alice", UserID: bob.ID, Text: " \n "}, code: onair.EINVALID, msg: "Message must not be empty."},
			{name: "too long", m: &onair.ChatMessage{Channel: "alice", UserID: bob.ID, Text: strings.Repeat("é", onair.MaxChatLen+1)},
				code: onair.EINVALID, msg: "Message must be at most 500 characters."},
			{name: "nul", m: &onair.ChatMessage{Channel: "alice", UserID: bob.ID, Text: "a\x00"}, code: onair.EINVALID, msg: "Message must not contain control characters."},
			{name: "unknown channel", m: &onair.ChatMessage{Channel: "ghost", UserID: bob.ID, Text: "hi"}, code: onair.ENOTFOUND, msg: "Channel or user not found."},
			{name: "unknown user", m: &onair.ChatMessage{Channel: "alice", UserID: 999, Text: "hi"}, code: onair.ENOTFOUND, msg: "Channel or user not found."},
		}
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				requireMessage(t, e.chat.SaveMessage(ctx, ca.m), ca.code, ca.msg)
			})
		}
		// The limit counts characters, not bytes.
		long := &onair.ChatMessage{Channel: "alice", UserID: bob.ID, Text: strings.Repeat("é", onair.MaxChatLen)}
		require.NoError(t, e.chat.SaveMessage(ctx, long))
		msgs, err := e.chat.RecentMessages(ctx, "alice", 10)
		require.NoError(t, err)
		require.Len(t, msgs, 2)
		require.Equal(t, long.Text, msgs[1].Text)
	})
}

func TestChatServiceRecentMessages(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		alice := e.mustUser(t, "alice")
		bob := e.mustUser(t, "bob")
		for i := range 5 {
			e.clock.Add(time.Second)
			for _, u := range []*onair.User{alice, bob} {
				require.NoError(t, e.chat.SaveMessage(ctx, &onair.ChatMessage{Channel: "alice", UserID: u.ID, Text: fmt.Sprintf("%s %d", u.Username, i)}))
			}
		}
		require.NoError(t, e.chat.SaveMessage(ctx, &onair.ChatMessage{Channel: "bob", UserID: alice.ID, Text: "elsewhere"}))

		msgs, err := e.chat.RecentMessages(ctx, "alice", 3)
		require.NoError(t, err)
		var texts []string
		for _, m := range msgs {
			texts = append(texts, m.Text)
			require.Equal(t, "alice", m.Channel)
		}
		require.Equal(t, []string{"bob 3", "alice 4", "bob 4"}, texts, "the last three, oldest first")
		require.Equal(t, bob.ID, msgs[2].UserID)
		require.Equal(t, "bob", msgs[2].User)
		require.Equal(t, startTime.Add(5*time.Second), msgs[2].CreatedAt)
		require.Less(t, msgs[0].ID, msgs[1].ID)

		msgs, err = e.chat.RecentMessages(ctx, "alice", 0)
		require.NoError(t, err)
		require.Len(t, msgs, 10)
		msgs, err = e.chat.RecentMessages(ctx, "carol_none", 5)
		requireCode(t, err, onair.ENOTFOUND)
		require.Nil(t, msgs)
	})
}

func TestChatServiceDeleteMessage(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		boss := e.mustUser(t, "boss")
		alice := e.mustUser(t, "alice")
		bob := e.mustUser(t, "bob")
		save := func(u *onair.User) int64 {
			m := &onair.ChatMessage{Channel: "alice", UserID: u.ID, Text: "hi"}
			require.NoError(t, e.chat.SaveMessage(ctx, m))
			return m.ID
		}
		byBob := save(bob)

		cases := []struct {
			name  string
			actor *onair.User
			id    int64
			code  string
			msg   string
		}{
			{name: "anonymous", id: byBob, code: onair.EUNAUTHORIZED, msg: "You must be signed in."},
			{name: "author is no moderator", actor: bob, id: byBob, code: onair.EFORBIDDEN,
				msg: "Only the channel owner and site admins can moderate this chat."},
			{name: "unknown", actor: alice, id: 999, code: onair.ENOTFOUND, msg: "Message not found."},
		}
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				_, err := e.chat.DeleteMessage(ctx, ca.actor, ca.id)
				requireMessage(t, err, ca.code, ca.msg)
			})
		}

		for _, mod := range []*onair.User{alice, boss} {
			id := save(bob)
			channel, err := e.chat.DeleteMessage(ctx, mod, id)
			require.NoError(t, err, mod.Username)
			require.Equal(t, "alice", channel)
		}
		msgs, err := e.chat.RecentMessages(ctx, "alice", 10)
		require.NoError(t, err)
		require.Len(t, msgs, 1)
		require.Equal(t, byBob, msgs[0].ID)
	})
}

func TestChatServiceBans(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		boss := e.mustUser(t, "boss")
		alice := e.mustUser(t, "alice")
		bob := e.mustUser(t, "bob")
		carol := e.mustUser(t, "carol")
		say := func(u *onair.User, channel string) error {
			return e.chat.SaveMessage(ctx, &onair.ChatMessage{Channel: channel, UserID: u.ID, Text: "hi"})
		}

		cases := []struct {
			name    string
			actor   *onair.User
			channel string
			target  string
			d       time.Duration
			code    string
			msg     string
		}{
			{name: "anonymous", channel: "alice", target: "bob", code: onair.EUNAUTHORIZED, msg: "You must be signed in."},
			{name: "not a moderator", actor: carol, channel: "alice", target: "bob", code: onair.EFORBIDDEN,
				msg: "Only the channel owner and site admins can moderate this chat."},
			{name: "owner bans self", actor: alice, channel: "alice", target: "alice", code: onair.EINVALID, msg: "You cannot ban yourself."},
			{name: "admin bans self", actor: boss, channel: "alice", target: "boss", code: onair.EINVALID, msg: "You cannot ban yourself."},
			{name: "admin bans owner", actor: boss, channel: "alice", target: "alice", code: onair.EFORBIDDEN, msg: "You cannot ban the channel owner."},
			{name: "unknown channel", actor: alice, channel: "ghost", target: "bob", code: onair.ENOTFOUND, msg: `Channel "ghost" not found.`},
			{name: "unknown user", actor: alice, channel: "alice", target: "ghost", code: onair.ENOTFOUND, msg: `User "ghost" not found.`},
			{name: "negative", actor: alice, channel: "alice", target: "bob", d: -time.Second, code: onair.EINVALID, msg: "Time-out must not be negative."},
		}
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				requireMessage(t, e.chat.BanFromChat(ctx, ca.actor, ca.channel, ca.target, ca.d), ca.code, ca.msg)
			})
		}
		require.NoError(t, say(bob, "alice"), "refused bans changed nothing")

		// A ban for ever, by the owner.
		require.NoError(t, e.chat.BanFromChat(ctx, alice, "alice", "bob", 0))
		requireMessage(t, say(bob, "alice"), onair.EFORBIDDEN, "You are banned from this chat.")
		require.NoError(t, say(bob, "carol"), "only in that channel")
		banned, until, err := e.chat.ChatBanned(ctx, "alice", bob.ID)
		require.NoError(t, err)
		require.True(t, banned)
		require.True(t, until.IsZero())
		requireCode(t, e.chat.UnbanFromChat(ctx, carol, "alice", "bob"), onair.EFORBIDDEN)
		requireCode(t, e.chat.UnbanFromChat(ctx, nil, "alice", "bob"), onair.EUNAUTHORIZED)
		require.NoError(t, e.chat.UnbanFromChat(ctx, alice, "alice", "bob"))
		require.NoError(t, e.chat.UnbanFromChat(ctx, alice, "alice", "bob"), "idempotent")
		require.NoError(t, say(bob, "alice"))

		// A time-out by an admin replaces a ban, and ends by itself.
		require.NoError(t, e.chat.BanFromChat(ctx, alice, "alice", "carol", 0))
		require.NoError(t, e.chat.BanFromChat(ctx, boss, "alice", "carol", 10*time.Minute))
		end := startTime.Add(10 * time.Minute)
		requireMessage(t, say(carol, "alice"), onair.EFORBIDDEN,
			"You are timed out of this chat until "+end.Format("2006-01-02 15:04:05")+" UTC.")
		banned, until, err = e.chat.ChatBanned(ctx, "alice", carol.ID)
		require.NoError(t, err)
		require.True(t, banned)
		require.Equal(t, end, until)
		require.Equal(t, 1, e.count(t, `SELECT COUNT(*) FROM chat_bans WHERE user_id = ?`, carol.ID))

		e.clock.Add(10 * time.Minute)
		require.NoError(t, say(carol, "alice"))
		banned, _, err = e.chat.ChatBanned(ctx, "alice", carol.ID)
		require.NoError(t, err)
		require.False(t, banned)

		banned, _, err = e.chat.ChatBanned(ctx, "alice", 999)
		require.NoError(t, err)
		require.False(t, banned, "unknown user")
		_, _, err = e.chat.ChatBanned(ctx, "ghost", bob.ID)
		requireCode(t, err, onair.ENOTFOUND)
	})
}
