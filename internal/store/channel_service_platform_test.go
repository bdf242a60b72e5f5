package store_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
)

func TestChannelServiceChannelInfo(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		alice := e.mustUser(t, "alice")
		info, err := e.channels.ChannelInfo(ctx, "alice")
		require.NoError(t, err)
		require.Equal(t, alice.ID, info.UserID)
		require.Equal(t, "alice", info.Name)
		require.Equal(t, []string{}, info.Tags)
		require.True(t, info.Recording, "recording is on by default")
		require.True(t, info.Transcode, "transcoding is on by default")
		require.Zero(t, info.Followers)
		require.Equal(t, startTime, info.CreatedAt)
		_, err = e.channels.ChannelInfo(ctx, "ghost")
		requireMessage(t, err, onair.ENOTFOUND, `Channel "ghost" not found.`)
	})
}

func TestChannelServiceUpdateChannel(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		alice := e.mustUser(t, "alice")
		e.mustUser(t, "bob")

		// A full update.
		info, err := e.channels.UpdateChannel(ctx, alice, onair.ChannelUpdate{
			Title:       ptr("  Late night coding  "),
			Description: ptr("Line one\nLine two\twith a tab"),
			Tags:        &[]string{"Go", " coding ", "go", "", "late-night"},
			Recording:   ptr(false),
			Transcode:   ptr(false),
		})
		require.NoError(t, err)
		require.False(t, info.Transcode)
		require.Equal(t, "Late night coding", info.Title)
		require.Equal(t, "Line one\nLine two\twith a tab", info.Description)
		require.Equal(t, []string{"go", "coding", "late-night"}, info.Tags)
		require.False(t, info.Recording)
		got, err := e.channels.ChannelInfo(ctx, "alice")
		require.NoError(t, err)
		require.Equal(t, info, got)

		// Nil fields are left alone; tags are replaced, in their new order.
		info, err = e.channels.UpdateChannel(ctx, alice, onair.ChannelUpdate{Tags: &[]string{"late-night", "music"}})
		require.NoError(t, err)
		require.Equal(t, "Late night coding", info.Title)
		require.False(t, info.Recording)
		require.Equal(t, []string{"late-night", "music"}, info.Tags)
		require.False(t, info.Transcode)
		info, err = e.channels.UpdateChannel(ctx, alice, onair.ChannelUpdate{Recording: ptr(true), Tags: &[]string{}})
		require.NoError(t, err)
		require.True(t, info.Recording)
		require.False(t, info.Transcode)
		info, err = e.channels.UpdateChannel(ctx, alice, onair.ChannelUpdate{Transcode: ptr(true)})
		require.NoError(t, err)
		require.True(t, info.Transcode)
		require.Equal(t, []string{}, info.Tags)
		info, err = e.channels.UpdateChannel(ctx, alice, onair.ChannelUpdate{})
		require.NoError(t, err)
		require.Equal(t, "Late night coding", info.Title)

		// Bob's channel is untouched.
		bob, err := e.channels.ChannelInfo(ctx, "bob")
		require.NoError(t, err)
		require.Empty(t, bob.Title)
		require.True(t, bob.Recording)
		require.True(t, bob.Transcode)

		unicodeTitle := strings.Repeat("é", onair.MaxTitleLen)
		info, err = e.channels.UpdateChannel(ctx, alice, onair.ChannelUpdate{Title: &unicodeTitle})
		require.NoError(t, err, "the limit counts characters, not bytes")
		require.Equal(t, unicodeTitle, info.Title)

		cases := []struct {
			name  string
			actor *onair.User
			upd   onair.ChannelUpdate
			code  string
			msg   string
		}{
			{name: "anonymous", upd: onair.ChannelUpdate{Title: ptr("x")}, code: onair.EUNAUTHORIZED, msg: "You must be signed in."},
			{name: "long title", actor: alice, upd: onair.ChannelUpdate{Title: ptr(strings.Repeat("x", onair.MaxTitleLen+1))},
				code: onair.EINVALID, msg: "Title must be at most 140 characters."},
			{name: "newline in title", actor: alice, upd: onair.ChannelUpdate{Title: ptr("a\nb")},
				code: onair.EINVALID, msg: "Title must not contain control characters."},
			{name: "nul in description", actor: alice, upd: onair.ChannelUpdate{Description: ptr("a\x00b")},
				code: onair.EINVALID, msg: "Description must not contain control characters."},
			{name: "bad utf8", actor: alice, upd: onair.ChannelUpdate{Description: ptr("\xc3\x28")},
				code: onair.EINVALID, msg: "Description must be valid UTF-8 text."},
			{name: "long description", actor: alice, upd: onair.ChannelUpdate{Description: ptr(strings.Repeat("x", onair.MaxDescriptionLen+1))},
				code: onair.EINVALID, msg: "Description must be at most 5000 characters."},
			{name: "bad tag", actor: alice, upd: onair.ChannelUpdate{Title: ptr("changed"), Tags: &[]string{"ok", "not ok"}},
				code: onair.EINVALID, msg: `Tag "not ok" is not valid: use 1 to 30 characters of a-z, 0-9 and -.`},
			{name: "unknown user", actor: &onair.User{ID: 999}, upd: onair.ChannelUpdate{Title: ptr("x")},
				code: onair.ENOTFOUND, msg: "Channel not found."},
		}
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				_, err := e.channels.UpdateChannel(ctx, ca.actor, ca.upd)
				requireMessage(t, err, ca.code, ca.msg)
			})
		}
		// Refused updates changed nothing.
		got, err = e.channels.ChannelInfo(ctx, "alice")
		require.NoError(t, err)
		require.Equal(t, unicodeTitle, got.Title)
	})
}

func TestChannelServiceTagNormalization(t *testing.T) {
	many := make([]string, onair.MaxTags+1)
	for i := range many {
		many[i] = strings.Repeat("t", i+1)
	}
	cases := []struct {
		name string
		tags []string
		want []string
		msg  string
	}{
		{name: "lowercase and trim", tags: []string{" GoLang ", "Music"}, want: []string{"golang", "music"}},
		{name: "dedupe keeps first place", tags: []string{"b", "a", "B", "a "}, want: []string{"b", "a"}},
		{name: "empty ones dropped", tags: []string{"", "  ", "x"}, want: []string{"x"}},
		{name: "digits and dashes", tags: []string{"retro-90s", "-", "2025"}, want: []string{"retro-90s", "-", "2025"}},
		{name: "thirty characters", tags: []string{strings.Repeat("a", 30)}, want: []string{strings.Repeat("a", 30)}},
		{name: "ten after dedupe", tags: append(append([]string{}, many[:onair.MaxTags]...), "T", "tt"), want: many[:onair.MaxTags]},
		{name: "too many", tags: many, msg: "A channel can have at most 10 tags."},
		{name: "too long", tags: []string{strings.Repeat("a", 31)},
			msg: `Tag "` + strings.Repeat("a", 31) + `" is not valid: use 1 to 30 characters of a-z, 0-9 and -.`},
		{name: "underscore", tags: []string{"a_b"}, msg: `Tag "a_b" is not valid: use 1 to 30 characters of a-z, 0-9 and -.`},
		{name: "inner space", tags: []string{"live music"}, msg: `Tag "live music" is not valid: use 1 to 30 characters of a-z, 0-9 and -.`},
		{name: "accent", tags: []string{"café"}, msg: `Tag "café" is not valid: use 1 to 30 characters of a-z, 0-9 and -.`},
		{name: "script", tags: []string{"<script>"}, msg: `Tag "<script>" is not valid: use 1 to 30 characters of a-z, 0-9 and -.`},
		{name: "sql", tags: []string{"x' OR '1'='1"}, msg: `Tag "x' or '1'='1" is not valid: use 1 to 30 characters of a-z, 0-9 and -.`},
		{name: "long message cut", tags: []string{strings.Repeat("b", 50) + "!"},
			msg: `Tag "` + strings.Repeat("b", 40) + `…" is not valid: use 1 to 30 characters of a-z, 0-9 and -.`},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		alice := e.mustUser(t, "alice")
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				info, err := e.channels.UpdateChannel(t.Context(), alice, onair.ChannelUpdate{Tags: &ca.tags})
				if ca.msg != "" {
					requireMessage(t, err, onair.EINVALID, ca.msg)
					return
				}
				require.NoError(t, err)
				require.Equal(t, ca.want, info.Tags)
			})
		}
	})
}

// mustTag sets the tags of u's channel.
func (e *env) mustTag(tb testing.TB, u *onair.User, tags ...string) {
	tb.Helper()
	_, err := e.channels.UpdateChannel(tb.Context(), u, onair.ChannelUpdate{Tags: &tags})
	require.NoError(tb, err)
}

func names(infos []*onair.ChannelInfo) []string {
	out := []string{}
	for _, info := range infos {
		out = append(out, info.Name)
	}
	return out
}

func TestChannelServiceTags(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		boss := e.mustUser(t, "boss")
		carl := e.mustUser(t, "carl")
		anna := e.mustUser(t, "anna")
		bert := e.mustUser(t, "bert")
		dora := e.mustUser(t, "dora")
		e.mustTag(t, anna, "music", "jazz")
		e.mustTag(t, bert, "music", "games")
		e.mustTag(t, carl, "games", "music", "art")
		e.mustTag(t, dora, "art", "zzz")

		got, err := e.channels.ChannelsByTag(ctx, " MUSIC ", 0)
		require.NoError(t, err)
		require.Equal(t, []string{"anna", "bert", "carl"}, names(got))
		require.Equal(t, []string{"games", "music", "art"}, got[2].Tags, "all tags of each channel, in order")
		got, err = e.channels.ChannelsByTag(ctx, "music", 2)
		require.NoError(t, err)
		require.Equal(t, []string{"anna", "bert"}, names(got))
		for _, tag := range []string{"none", "", "not a tag", "%", "<script>"} {
			got, err = e.channels.ChannelsByTag(ctx, tag, 10)
			require.NoError(t, err)
			require.Empty(t, got, tag)
		}

		tags, err := e.channels.PopularTags(ctx, 0)
		require.NoError(t, err)
		require.Equal(t, []onair.TagCount{
			{Tag: "music", Count: 3}, {Tag: "art", Count: 2}, {Tag: "games", Count: 2}, {Tag: "jazz", Count: 1}, {Tag: "zzz", Count: 1},
		}, tags)
		tags, err = e.channels.PopularTags(ctx, 2)
		require.NoError(t, err)
		require.Equal(t, []onair.TagCount{{Tag: "music", Count: 3}, {Tag: "art", Count: 2}}, tags)

		// Channels of banned users are not listed, and their tags do not count.
		require.NoError(t, e.users.SetUserBanned(ctx, boss, carl.ID, true))
		got, err = e.channels.ChannelsByTag(ctx, "music", 0)
		require.NoError(t, err)
		require.Equal(t, []string{"anna", "bert"}, names(got))
		tags, err = e.channels.PopularTags(ctx, 3)
		require.NoError(t, err)
		require.Equal(t, []onair.TagCount{{Tag: "music", Count: 2}, {Tag: "art", Count: 1}, {Tag: "games", Count: 1}}, tags)
	})
}

func TestChannelServiceSearchChannels(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		boss := e.mustUser(t, "boss")
		titles := map[string]string{
			"gamer_one": "Speedrun Practice",
			"cooking":   "100% Pasta",
			"percent":   "Fifty_Fifty",
			"bang":      "Wow! Such title",
			"plain":     "100 Pasta recipes",
			"banned":    "speedrun too",
			"quote":     "It's a '); DROP TABLE users; -- show",
		}
		for name, title := range titles {
			u := e.mustUser(t, name)
			_, err := e.channels.UpdateChannel(ctx, u, onair.ChannelUpdate{Title: ptr(title)})
			require.NoError(t, err)
		}
		banned, err := e.users.FindUserByUsername(ctx, "banned")
		require.NoError(t, err)
		require.NoError(t, e.users.SetUserBanned(ctx, boss, banned.ID, true))

		cases := []struct {
			q     string
			limit int
			want  []string
		}{
			{q: "speedrun", want: []string{"gamer_one"}},
			{q: "SPEEDRUN", want: []string{"gamer_one"}},
			{q: "  Speed  ", want: []string{"gamer_one"}},
			{q: "GAMER", want: []string{"gamer_one"}},
			{q: "pasta", want: []string{"cooking", "plain"}},
			{q: "pasta", limit: 1, want: []string{"cooking"}},
			{q: "100%", want: []string{"cooking"}},
			{q: "%", want: []string{"cooking"}},
			{q: "_", want: []string{"gamer_one", "percent"}},
			{q: "r_o", want: []string{"gamer_one"}},
			{q: "y_f", want: []string{"percent"}},
			{q: "!", want: []string{"bang"}},
			{q: "w! s", want: []string{"bang"}},
			{q: "'); drop table", want: []string{"quote"}},
			{q: "' OR '1'='1", want: []string{}},
			{q: "nothing", want: []string{}},
			{q: "", want: []string{}},
			{q: "   ", want: []string{}},
		}
		for _, ca := range cases {
			t.Run(ca.q, func(t *testing.T) {
				got, err := e.channels.SearchChannels(ctx, ca.q, ca.limit)
				require.NoError(t, err)
				require.Equal(t, ca.want, names(got))
			})
		}
		_, err = e.channels.SearchChannels(ctx, strings.Repeat("x", 101), 0)
		requireMessage(t, err, onair.EINVALID, "Search must be at most 100 characters.")
		// The users table survived.
		require.Equal(t, 8, e.count(t, `SELECT COUNT(*) FROM users`))
	})
}

func TestChannelServiceFollows(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		alice := e.mustUser(t, "alice")
		bob := e.mustUser(t, "bob")
		carol := e.mustUser(t, "carol")
		e.mustTag(t, carol, "art")

		requireMessage(t, e.channels.Follow(ctx, nil, "bob"), onair.EUNAUTHORIZED, "You must be signed in.")
		requireMessage(t, e.channels.Follow(ctx, alice, "alice"), onair.EINVALID, "You cannot follow your own channel.")
		requireMessage(t, e.channels.Follow(ctx, alice, "ghost"), onair.ENOTFOUND, `Channel "ghost" not found.`)
		requireCode(t, e.channels.Unfollow(ctx, nil, "bob"), onair.EUNAUTHORIZED)
		requireCode(t, e.channels.Unfollow(ctx, alice, "ghost"), onair.ENOTFOUND)
		_, err := e.channels.IsFollowing(ctx, alice.ID, "ghost")
		requireCode(t, err, onair.ENOTFOUND)
		_, err = e.channels.FollowerIDs(ctx, "ghost")
		requireCode(t, err, onair.ENOTFOUND)

		require.NoError(t, e.channels.Follow(ctx, alice, "carol"))
		require.NoError(t, e.channels.Follow(ctx, alice, "carol"), "idempotent")
		require.NoError(t, e.channels.Follow(ctx, alice, "bob"))
		require.NoError(t, e.channels.Follow(ctx, bob, "carol"))

		ok, err := e.channels.IsFollowing(ctx, alice.ID, "carol")
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = e.channels.IsFollowing(ctx, carol.ID, "alice")
		require.NoError(t, err)
		require.False(t, ok)

		following, err := e.channels.Following(ctx, alice.ID)
		require.NoError(t, err)
		require.Equal(t, []string{"bob", "carol"}, names(following))
		require.Equal(t, []string{"art"}, following[1].Tags)
		require.Equal(t, 2, following[1].Followers)
		following, err = e.channels.Following(ctx, carol.ID)
		require.NoError(t, err)
		require.Equal(t, []string{}, names(following))

		ids, err := e.channels.FollowerIDs(ctx, "carol")
		require.NoError(t, err)
		require.Equal(t, []int64{alice.ID, bob.ID}, ids)
		ids, err = e.channels.FollowerIDs(ctx, "alice")
		require.NoError(t, err)
		require.Equal(t, []int64{}, ids)
		info, err := e.channels.ChannelInfo(ctx, "carol")
		require.NoError(t, err)
		require.Equal(t, 2, info.Followers)

		require.NoError(t, e.channels.Unfollow(ctx, alice, "carol"))
		require.NoError(t, e.channels.Unfollow(ctx, alice, "carol"), "idempotent")
		ok, err = e.channels.IsFollowing(ctx, alice.ID, "carol")
		require.NoError(t, err)
		require.False(t, ok)
		ids, err = e.channels.FollowerIDs(ctx, "carol")
		require.NoError(t, err)
		require.Equal(t, []int64{bob.ID}, ids)
	})
}
