package store_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/store"
)

func TestAccountServiceAuthenticateBanned(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		boss := e.mustUser(t, "boss")
		alice := e.mustUser(t, "alice")
		require.NoError(t, e.users.SetUserBanned(ctx, boss, alice.ID, true))

		// The right password of a banned user: forbidden. A wrong one: the usual answer,
		// so that a ban does not tell whether a password is right.
		_, err := e.users.Authenticate(ctx, "alice", "password-alice")
		requireMessage(t, err, onair.EFORBIDDEN, "This account is banned.")
		_, err = e.users.Authenticate(ctx, "alice", "wrong password")
		requireMessage(t, err, onair.EUNAUTHORIZED, "Invalid username or password.")

		got, err := e.users.FindUserByID(ctx, alice.ID)
		require.NoError(t, err)
		require.True(t, got.Banned)

		require.NoError(t, e.users.SetUserBanned(ctx, boss, alice.ID, false))
		got, err = e.users.Authenticate(ctx, "alice", "password-alice")
		require.NoError(t, err)
		require.False(t, got.Banned)
	})
}

// TestAccountServiceAuthenticateTiming checks that an unknown username takes about as
// long as a wrong password: both verify an argon2id hash.
func TestAccountServiceAuthenticateTiming(t *testing.T) {
	store.UseRealPasswordCost(t)
	e := newEnv(t, backends()[0])
	ctx := t.Context()
	e.mustUser(t, "alice")
	measure := func(username string) time.Duration {
		var ds []time.Duration
		for range 5 {
			start := time.Now()
			_, err := e.users.Authenticate(ctx, username, "wrong password")
			ds = append(ds, time.Since(start))
			requireMessage(t, err, onair.EUNAUTHORIZED, "Invalid username or password.")
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	measure("ghost") // make the dummy hash
	known, unknown := measure("alice"), measure("ghost")
	t.Logf("median: known user %v, unknown user %v", known, unknown)
	ratio := float64(max(known, unknown)) / float64(min(known, unknown))
	require.Less(t, ratio, 2.0, "known %v, unknown %v", known, unknown)
}

func TestAccountServiceChangePassword(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		alice := e.mustUser(t, "alice")
		bob := e.mustUser(t, "bob")
		keep := e.mustSession(t, alice)
		other := e.mustSession(t, alice)
		bobs := e.mustSession(t, bob)

		cases := []struct {
			name     string
			user     int64
			old, new string
			code     string
			msg      string
		}{
			{name: "wrong old", user: alice.ID, old: "nope", new: "new password", code: onair.EINVALID, msg: "Current password is incorrect."},
			{name: "short new", user: alice.ID, old: "password-alice", new: "short", code: onair.EINVALID, msg: "Password must be at least 8 characters."},
			{name: "unknown user", user: 999, old: "password-alice", new: "new password", code: onair.ENOTFOUND, msg: "User not found."},
		}
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				err := e.users.ChangePassword(ctx, ca.user, ca.old, ca.new, keep.Token)
				requireMessage(t, err, ca.code, ca.msg)
			})
		}
		// Nothing changed so far.
		_, err := e.sessions.FindSession(ctx, other.Token)
		require.NoError(t, err)

		require.NoError(t, e.users.ChangePassword(ctx, alice.ID, "password-alice", "new password", keep.Token))
		_, err = e.users.Authenticate(ctx, "alice", "password-alice")
		requireCode(t, err, onair.EUNAUTHORIZED)
		_, err = e.users.Authenticate(ctx, "alice", "new password")
		require.NoError(t, err)
		// The kept session lives on, the other one of alice is gone, bob's is untouched.
		_, err = e.sessions.FindSession(ctx, keep.Token)
		require.NoError(t, err)
		_, err = e.sessions.FindSession(ctx, other.Token)
		requireCode(t, err, onair.EUNAUTHORIZED)
		_, err = e.sessions.FindSession(ctx, bobs.Token)
		require.NoError(t, err)

		// Without a session to keep, all go.
		require.NoError(t, e.users.ChangePassword(ctx, alice.ID, "new password", "newer password", ""))
		_, err = e.sessions.FindSession(ctx, keep.Token)
		requireCode(t, err, onair.EUNAUTHORIZED)
		require.Zero(t, e.count(t, `SELECT COUNT(*) FROM sessions WHERE user_id = ?`, alice.ID))
	})
}

func TestAccountServiceListUsers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		boss := e.mustUser(t, "boss")
		names := []string{"boss"}
		for _, n := range []string{"anna", "bert", "cleo", "dora"} {
			e.mustUser(t, n)
			names = append(names, n)
		}
		slices.Reverse(names) // newest first
		anna, err := e.users.FindUserByUsername(ctx, "anna")
		require.NoError(t, err)

		cases := []struct {
			name          string
			actor         *onair.User
			offset, limit int
			want          []string
			code          string
		}{
			{name: "all", actor: boss, want: names},
			{name: "page", actor: boss, offset: 1, limit: 2, want: names[1:3]},
			{name: "past the end", actor: boss, offset: 10, limit: 2, want: []string{}},
			{name: "negative offset", actor: boss, offset: -3, limit: 1, want: names[:1]},
			{name: "anonymous", code: onair.EUNAUTHORIZED},
			{name: "not admin", actor: anna, code: onair.EFORBIDDEN},
			{name: "banned admin", actor: &onair.User{ID: boss.ID, IsAdmin: true, Banned: true}, code: onair.EFORBIDDEN},
		}
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				users, err := e.users.ListUsers(ctx, ca.actor, ca.offset, ca.limit)
				if ca.code != "" {
					requireCode(t, err, ca.code)
					return
				}
				require.NoError(t, err)
				got := []string{}
				for _, u := range users {
					got = append(got, u.Username)
				}
				require.Equal(t, ca.want, got)
			})
		}
	})
}

func TestAccountServiceSetUserBanned(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		boss := e.mustUser(t, "boss")
		alice, aliceKey := MustCreateUser(t, e.db, "alice")
		bob := e.mustUser(t, "bob")
		sess := e.mustSession(t, alice)
		token, err := e.sessions.CreateAPIToken(ctx, alice.ID, "cli")
		require.NoError(t, err)

		cases := []struct {
			name   string
			actor  *onair.User
			target int64
			code   string
			msg    string
		}{
			{name: "anonymous", target: alice.ID, code: onair.EUNAUTHORIZED, msg: "You must be signed in."},
			{name: "not admin", actor: bob, target: alice.ID, code: onair.EFORBIDDEN, msg: "Only site admins can do that."},
			{name: "self", actor: boss, target: boss.ID, code: onair.EINVALID, msg: "You cannot ban yourself."},
			{name: "unknown", actor: boss, target: 999, code: onair.ENOTFOUND, msg: "User not found."},
		}
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				requireMessage(t, e.users.SetUserBanned(ctx, ca.actor, ca.target, true), ca.code, ca.msg)
			})
		}
		_, err = e.sessions.FindSession(ctx, sess.Token)
		require.NoError(t, err, "refused bans changed nothing")

		e.clock.Add(time.Second)
		require.NoError(t, e.users.SetUserBanned(ctx, boss, alice.ID, true))
		got, err := e.users.FindUserByID(ctx, alice.ID)
		require.NoError(t, err)
		require.True(t, got.Banned)
		var bannedAt int64
		require.NoError(t, e.db.SQL().QueryRowContext(ctx, e.db.Rebind(`SELECT banned_at FROM users WHERE id = ?`), alice.ID).Scan(&bannedAt))
		require.Equal(t, startTime.Add(time.Second).UnixMilli(), bannedAt)

		// Her sessions are gone, and she can neither sign in, nor use her token, nor
		// publish, nor chat.
		require.Zero(t, e.count(t, `SELECT COUNT(*) FROM sessions WHERE user_id = ?`, alice.ID))
		_, err = e.sessions.FindSession(ctx, sess.Token)
		requireCode(t, err, onair.EUNAUTHORIZED)
		_, err = e.sessions.CreateSession(ctx, alice.ID)
		requireCode(t, err, onair.EFORBIDDEN)
		_, err = e.sessions.FindUserByAPIToken(ctx, token)
		requireCode(t, err, onair.EFORBIDDEN)
		_, err = e.sessions.CreateAPIToken(ctx, alice.ID, "more")
		requireCode(t, err, onair.EFORBIDDEN)
		_, err = e.keys.ChannelByStreamKey(ctx, aliceKey)
		requireMessage(t, err, onair.EFORBIDDEN, "This account is banned.")
		err = e.chat.SaveMessage(ctx, &onair.ChatMessage{Channel: "bob", UserID: alice.ID, Text: "hi"})
		requireCode(t, err, onair.EFORBIDDEN)
		banned, until, err := e.chat.ChatBanned(ctx, "bob", alice.ID)
		require.NoError(t, err)
		require.True(t, banned)
		require.True(t, until.IsZero())
		err = e.users.ChangePassword(ctx, alice.ID, "password-alice", "another password", "")
		requireCode(t, err, onair.EFORBIDDEN)
		// Her own view of herself, passed as the actor, is refused everywhere.
		got.Banned = true
		requireCode(t, e.channels.Follow(ctx, got, "bob"), onair.EFORBIDDEN)
		_, err = e.channels.UpdateChannel(ctx, got, onair.ChannelUpdate{Title: ptr("x")})
		requireCode(t, err, onair.EFORBIDDEN)
		// Banning twice is fine.
		require.NoError(t, e.users.SetUserBanned(ctx, boss, alice.ID, true))

		// Unbanned, the token and key work again; sessions must be made anew.
		require.NoError(t, e.users.SetUserBanned(ctx, boss, alice.ID, false))
		require.NoError(t, e.db.SQL().QueryRowContext(ctx, e.db.Rebind(`SELECT COUNT(*) FROM users WHERE id = ? AND banned_at IS NULL`), alice.ID).Scan(&bannedAt))
		require.EqualValues(t, 1, bannedAt)
		u, err := e.sessions.FindUserByAPIToken(ctx, token)
		require.NoError(t, err)
		require.Equal(t, alice.ID, u.ID)
		ch, err := e.keys.ChannelByStreamKey(ctx, aliceKey)
		require.NoError(t, err)
		require.Equal(t, "alice", ch.Name)
		_, err = e.sessions.CreateSession(ctx, alice.ID)
		require.NoError(t, err)
	})
}

func TestAccountServiceDeleteUserAuthorization(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		boss := e.mustUser(t, "boss")
		alice := e.mustUser(t, "alice")
		bob := e.mustUser(t, "bob")
		carol := e.mustUser(t, "carol")

		requireMessage(t, e.users.DeleteUser(ctx, nil, alice.ID), onair.EUNAUTHORIZED, "You must be signed in.")
		requireMessage(t, e.users.DeleteUser(ctx, bob, alice.ID), onair.EFORBIDDEN, "You can only delete your own account.")
		requireCode(t, e.users.DeleteUser(ctx, &onair.User{ID: alice.ID, Banned: true}, alice.ID), onair.EFORBIDDEN)
		requireMessage(t, e.users.DeleteUser(ctx, boss, 999), onair.ENOTFOUND, "User not found.")

		require.NoError(t, e.users.DeleteUser(ctx, alice, alice.ID), "self")
		require.NoError(t, e.users.DeleteUser(ctx, boss, bob.ID), "admin")
		for _, name := range []string{"alice", "bob"} {
			_, err := e.users.FindUserByUsername(ctx, name)
			requireCode(t, err, onair.ENOTFOUND)
		}
		_, err := e.users.FindUserByID(ctx, carol.ID)
		require.NoError(t, err)
		requireCode(t, e.users.DeleteUser(ctx, alice, alice.ID), onair.ENOTFOUND)
	})
}

// TestAccountServiceDeleteUserCascade gives a user something in every table, deletes
// them, and checks that nothing of theirs is left while others' data is.
func TestAccountServiceDeleteUserCascade(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		alice := e.mustUser(t, "alice") // the first user: an admin
		bob := e.mustUser(t, "bob")
		carol := e.mustUser(t, "carol")

		e.mustSession(t, alice)
		e.mustSession(t, bob)
		_, err := e.sessions.CreateAPIToken(ctx, alice.ID, "cli")
		require.NoError(t, err)
		_, err = e.channels.UpdateChannel(ctx, alice, onair.ChannelUpdate{Tags: &[]string{"music", "live"}})
		require.NoError(t, err)
		_, err = e.channels.UpdateChannel(ctx, bob, onair.ChannelUpdate{Tags: &[]string{"music"}})
		require.NoError(t, err)
		require.NoError(t, e.channels.Follow(ctx, alice, "bob"))
		require.NoError(t, e.channels.Follow(ctx, bob, "alice"))
		require.NoError(t, e.channels.Follow(ctx, carol, "bob"))
		for _, m := range []*onair.ChatMessage{
			{Channel: "alice", UserID: bob.ID, Text: "bob at alice"},
			{Channel: "bob", UserID: alice.ID, Text: "alice at bob"},
			{Channel: "bob", UserID: carol.ID, Text: "carol at bob"},
		} {
			require.NoError(t, e.chat.SaveMessage(ctx, m))
		}
		require.NoError(t, e.chat.BanFromChat(ctx, alice, "alice", "carol", 0))
		require.NoError(t, e.chat.BanFromChat(ctx, alice, "bob", "carol", time.Hour)) // as admin
		require.NoError(t, e.chat.BanFromChat(ctx, bob, "bob", "alice", 0))
		aliceVideo, err := e.comments.ChannelVideo(ctx, "alice")
		require.NoError(t, err)
		bobVideo, err := e.comments.ChannelVideo(ctx, "bob")
		require.NoError(t, err)
		for _, c := range []struct {
			actor *onair.User
			video int64
		}{{bob, aliceVideo.ID}, {alice, bobVideo.ID}, {carol, bobVideo.ID}} {
			_, err := e.comments.CreateComment(ctx, c.actor, c.video, "hello from "+c.actor.Username)
			require.NoError(t, err)
		}
		require.NoError(t, e.notes.Notify(ctx, []int64{alice.ID, bob.ID}, onair.Notification{Kind: "live", Channel: "bob", Text: "bob is live"}))

		require.NoError(t, e.users.DeleteUser(ctx, alice, alice.ID))

		// Nothing refers to alice or her channel any more.
		for _, q := range []string{
			`SELECT COUNT(*) FROM users WHERE id = ?`,
			`SELECT COUNT(*) FROM channels WHERE user_id = ?`,
			`SELECT COUNT(*) FROM sessions WHERE user_id = ?`,
			`SELECT COUNT(*) FROM api_tokens WHERE user_id = ?`,
			`SELECT COUNT(*) FROM follows WHERE follower_id = ?`,
			`SELECT COUNT(*) FROM chat_messages WHERE user_id = ?`,
			`SELECT COUNT(*) FROM chat_bans WHERE user_id = ? OR created_by = ?`,
			`SELECT COUNT(*) FROM comments WHERE user_id = ?`,
			`SELECT COUNT(*) FROM notifications WHERE user_id = ?`,
		} {
			args := []any{alice.ID}
			if q == `SELECT COUNT(*) FROM chat_bans WHERE user_id = ? OR created_by = ?` {
				args = append(args, alice.ID)
			}
			require.Zero(t, e.count(t, q, args...), q)
		}
		require.Zero(t, e.count(t, `SELECT COUNT(*) FROM videos WHERE id = ?`, aliceVideo.ID))
		require.Zero(t, e.count(t, `SELECT COUNT(*) FROM comments WHERE video_id = ?`, aliceVideo.ID), "bob's comment on alice's video")
		require.Zero(t, e.count(t, `SELECT COUNT(*) FROM chat_messages m JOIN channels c ON c.id = m.channel_id WHERE c.name = ?`, "alice"))
		require.Zero(t, e.count(t, `SELECT COUNT(*) FROM follows f WHERE f.channel_id NOT IN (SELECT id FROM channels)`), "bob's follow of alice")
		require.Zero(t, e.count(t, `SELECT COUNT(*) FROM channel_tags t WHERE t.channel_id NOT IN (SELECT id FROM channels)`))
		require.Zero(t, e.count(t, `SELECT COUNT(*) FROM stream_keys k WHERE k.channel_id NOT IN (SELECT id FROM channels)`))
		_, err = e.channels.ChannelInfo(ctx, "alice")
		requireCode(t, err, onair.ENOTFOUND)

		// Bob's and carol's things are there, and carol's ban in bob's chat outlives alice
		// who set it.
		info, err := e.channels.ChannelInfo(ctx, "bob")
		require.NoError(t, err)
		require.Equal(t, []string{"music"}, info.Tags)
		require.Equal(t, 1, info.Followers)
		msgs, err := e.chat.RecentMessages(ctx, "bob", 10)
		require.NoError(t, err)
		require.Len(t, msgs, 1)
		require.Equal(t, "carol at bob", msgs[0].Text)
		comments, err := e.comments.Comments(ctx, bobVideo.ID, 0, 10)
		require.NoError(t, err)
		require.Len(t, comments, 1)
		require.Equal(t, "carol", comments[0].User)
		banned, _, err := e.chat.ChatBanned(ctx, "bob", carol.ID)
		require.NoError(t, err)
		require.True(t, banned)
		require.Equal(t, 1, e.count(t, `SELECT COUNT(*) FROM chat_bans WHERE created_by IS NULL`))
		n, err := e.notes.UnreadCount(ctx, bob.ID)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.Equal(t, 1, e.count(t, `SELECT COUNT(*) FROM sessions`))
		tags, err := e.channels.PopularTags(ctx, 10)
		require.NoError(t, err)
		require.Equal(t, []onair.TagCount{{Tag: "music", Count: 1}}, tags)
	})
}
