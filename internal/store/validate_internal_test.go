package store

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
)

func TestCleanText(t *testing.T) {
	cases := []struct {
		name      string
		in        string
		max       int
		multiline bool
		required  bool
		want      string
		msg       string
	}{
		{name: "trim", in: "  hi \n", max: 10, want: "hi"},
		{name: "empty ok", in: "  ", max: 10, want: ""},
		{name: "empty required", in: "  ", max: 10, required: true, msg: "X must not be empty."},
		{name: "newline multiline", in: "a\nb\r\nc\td", max: 10, multiline: true, want: "a\nb\r\nc\td"},
		{name: "newline single", in: "a\nb", max: 10, msg: "X must not contain control characters."},
		{name: "tab single", in: "a\tb", max: 10, msg: "X must not contain control characters."},
		{name: "nul", in: "a\x00b", max: 10, multiline: true, msg: "X must not contain control characters."},
		{name: "del", in: "a\x7fb", max: 10, multiline: true, msg: "X must not contain control characters."},
		{name: "escape", in: "\x1b[31m", max: 10, msg: "X must not contain control characters."},
		{name: "bad utf8", in: "\xff", max: 10, msg: "X must be valid UTF-8 text."},
		{name: "max runes", in: strings.Repeat("ü", 3), max: 3, want: "üüü"},
		{name: "over max", in: strings.Repeat("ü", 4), max: 3, msg: "X must be at most 3 characters."},
		{name: "html verbatim", in: "<b>&amp;</b>", max: 20, want: "<b>&amp;</b>"},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			got, err := cleanText("X", ca.in, ca.max, ca.multiline, ca.required)
			if ca.msg != "" {
				require.Equal(t, onair.EINVALID, onair.ErrorCode(err))
				require.Equal(t, ca.msg, onair.ErrorMessage(err))
				return
			}
			require.NoError(t, err)
			require.Equal(t, ca.want, got)
		})
	}
}

func FuzzCleanText(f *testing.F) {
	for _, s := range []string{"", "hi", " a\nb ", "\x00", "\xff", "<script>", strings.Repeat("é", 20)} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, multiline bool) {
		got, err := cleanText("X", s, 10, multiline, true)
		if err != nil {
			require.Equal(t, onair.EINVALID, onair.ErrorCode(err))
			return
		}
		// What passes is storable on every database: valid UTF-8 without NUL, trimmed, and
		// within the limit.
		require.True(t, utf8.ValidString(got))
		require.NotContains(t, got, "\x00")
		require.Equal(t, strings.TrimSpace(got), got)
		require.NotEmpty(t, got)
		require.LessOrEqual(t, utf8.RuneCountInString(got), 10)
		if !multiline {
			require.NotContains(t, got, "\n")
		}
	})
}

func FuzzNormalizeTags(f *testing.F) {
	f.Add("Go, music ,go,,late-night")
	f.Add("<script>,x")
	f.Add(strings.Repeat("a,", 12))
	f.Fuzz(func(t *testing.T, s string) {
		tags, err := normalizeTags(strings.Split(s, ","))
		if err != nil {
			require.Equal(t, onair.EINVALID, onair.ErrorCode(err))
			require.True(t, utf8.ValidString(onair.ErrorMessage(err)) || !utf8.ValidString(s))
			return
		}
		require.LessOrEqual(t, len(tags), onair.MaxTags)
		seen := map[string]bool{}
		for _, tag := range tags {
			require.Regexp(t, `^[a-z0-9-]{1,30}$`, tag)
			require.False(t, seen[tag], "duplicate %q", tag)
			seen[tag] = true
		}
	})
}
