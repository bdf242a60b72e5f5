package store_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
)

func TestCommentServiceChannelVideo(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		e.mustUser(t, "alice")
		e.mustUser(t, "bob")
		a, err := e.comments.ChannelVideo(ctx, "alice")
		require.NoError(t, err)
		require.Equal(t, "live", a.Kind)
		require.Equal(t, "alice", a.Channel)
		again, err := e.comments.ChannelVideo(ctx, "alice")
		require.NoError(t, err)
		require.Equal(t, a, again)
		bv, err := e.comments.ChannelVideo(ctx, "bob")
		require.NoError(t, err)
		require.NotEqual(t, a.ID, bv.ID)
		got, err := e.comments.FindVideo(ctx, bv.ID)
		require.NoError(t, err)
		require.Equal(t, bv, got)

		_, err = e.comments.ChannelVideo(ctx, "ghost")
		requireCode(t, err, onair.ENOTFOUND)
		_, err = e.comments.FindVideo(ctx, 999)
		requireMessage(t, err, onair.ENOTFOUND, "Video not found.")
	})
}

func TestCommentServiceComments(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		alice := e.mustUser(t, "alice")
		bob := e.mustUser(t, "bob")
		video, err := e.comments.ChannelVideo(ctx, "alice")
		require.NoError(t, err)

		c, err := e.comments.CreateComment(ctx, bob, video.ID, "  first!  ")
		require.NoError(t, err)
		require.NotZero(t, c.ID)
		require.Equal(t, "first!", c.Text)
		require.Equal(t, "bob", c.User)
		require.Equal(t, bob.ID, c.UserID)
		require.Equal(t, video.ID, c.VideoID)
		require.Equal(t, startTime, c.CreatedAt)
		require.Nil(t, c.EditedAt)

		cases := []struct {
			name  string
			actor *onair.User
			video int64
			text  string
			code  string
			msg   string
		}{
			{name: "anonymous", video: video.ID, text: "x", code: onair.EUNAUTHORIZED, msg: "You must be signed in."},
			{name: "banned", actor: &onair.User{ID: bob.ID, Banned: true}, video: video.ID, text: "x", code: onair.EFORBIDDEN, msg: "This account is banned."},
			{name: "empty", actor: bob, video: video.ID, text: "   ", code: onair.EINVALID, msg: "Comment must not be empty."},
			{name: "too long", actor: bob, video: video.ID, text: strings.Repeat("x", onair.MaxCommentLen+1), code: onair.EINVALID,
				msg: "Comment must be at most 5000 characters."},
			{name: "unknown video", actor: bob, video: 999, text: "x", code: onair.ENOTFOUND, msg: "Video not found."},
		}
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				_, err := e.comments.CreateComment(ctx, ca.actor, ca.video, ca.text)
				requireMessage(t, err, ca.code, ca.msg)
			})
		}

		for i := range 4 {
			e.clock.Add(time.Second)
			_, err := e.comments.CreateComment(ctx, alice, video.ID, fmt.Sprintf("reply %d\nsecond line", i))
			require.NoError(t, err)
		}
		all, err := e.comments.Comments(ctx, video.ID, 0, 0)
		require.NoError(t, err)
		require.Len(t, all, 5)
		require.Equal(t, c, all[0])
		require.Equal(t, "reply 3\nsecond line", all[4].Text)
		page, err := e.comments.Comments(ctx, video.ID, 1, 2)
		require.NoError(t, err)
		require.Equal(t, all[1:3], page)
		page, err = e.comments.Comments(ctx, video.ID, 10, 2)
		require.NoError(t, err)
		require.Empty(t, page)
		_, err = e.comments.Comments(ctx, 999, 0, 10)
		requireCode(t, err, onair.ENOTFOUND)
	})
}

func TestCommentServiceUpdateDelete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		boss := e.mustUser(t, "boss")
		alice := e.mustUser(t, "alice") // the channel owner
		bob := e.mustUser(t, "bob")     // the author
		carol := e.mustUser(t, "carol") // someone else
		video, err := e.comments.ChannelVideo(ctx, "alice")
		require.NoError(t, err)
		newComment := func() *onair.Comment {
			c, err := e.comments.CreateComment(ctx, bob, video.ID, "original")
			require.NoError(t, err)
			return c
		}
		c := newComment()

		// Only the author edits.
		for _, ca := range []struct {
			name  string
			actor *onair.User
			code  string
		}{
			{name: "anonymous", code: onair.EUNAUTHORIZED},
			{name: "other user", actor: carol, code: onair.EFORBIDDEN},
			{name: "channel owner", actor: alice, code: onair.EFORBIDDEN},
			{name: "admin", actor: boss, code: onair.EFORBIDDEN},
		} {
			t.Run("update "+ca.name, func(t *testing.T) {
				_, err := e.comments.UpdateComment(ctx, ca.actor, c.ID, "changed")
				requireCode(t, err, ca.code)
			})
		}
		_, err = e.comments.UpdateComment(ctx, bob, c.ID, "")
		requireCode(t, err, onair.EINVALID)
		_, err = e.comments.UpdateComment(ctx, bob, 999, "x")
		requireMessage(t, err, onair.ENOTFOUND, "Comment not found.")
		e.clock.Add(time.Minute)
		edited, err := e.comments.UpdateComment(ctx, bob, c.ID, " changed ")
		require.NoError(t, err)
		require.Equal(t, "changed", edited.Text)
		require.Equal(t, c.CreatedAt, edited.CreatedAt)
		require.NotNil(t, edited.EditedAt)
		require.Equal(t, startTime.Add(time.Minute), *edited.EditedAt)
		all, err := e.comments.Comments(ctx, video.ID, 0, 10)
		require.NoError(t, err)
		require.Equal(t, []*onair.Comment{edited}, all)

		// The author, the channel owner and admins delete; others do not.
		requireCode(t, e.comments.DeleteComment(ctx, nil, c.ID), onair.EUNAUTHORIZED)
		requireMessage(t, e.comments.DeleteComment(ctx, carol, c.ID), onair.EFORBIDDEN, "You cannot delete this comment.")
		requireCode(t, e.comments.DeleteComment(ctx, &onair.User{ID: bob.ID, Banned: true}, c.ID), onair.EFORBIDDEN)
		requireCode(t, e.comments.DeleteComment(ctx, bob, 999), onair.ENOTFOUND)
		for _, actor := range []*onair.User{bob, alice, boss} {
			c := newComment()
			require.NoError(t, e.comments.DeleteComment(ctx, actor, c.ID), actor.Username)
			requireCode(t, e.comments.DeleteComment(ctx, actor, c.ID), onair.ENOTFOUND)
		}
		all, err = e.comments.Comments(ctx, video.ID, 0, 10)
		require.NoError(t, err)
		require.Len(t, all, 1)

		// On another channel, alice is nobody special.
		other, err := e.comments.ChannelVideo(ctx, "carol")
		require.NoError(t, err)
		oc, err := e.comments.CreateComment(ctx, bob, other.ID, "x")
		require.NoError(t, err)
		requireCode(t, e.comments.DeleteComment(ctx, alice, oc.ID), onair.EFORBIDDEN)
	})
}
