package bus

import (
	"strings"
	"testing"
)

// FuzzSubject checks that no topic maps to a subject with a wildcard, a space, an empty
// token or another prefix, and that distinct topics without escapes stay distinct.
func FuzzSubject(f *testing.F) {
	for _, s := range []string{"chat.alice", "live", "notify.42", "a b.*.>", "x..y.", "", ".", "~41", "é.\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		s := subject("p", topic)
		if !strings.HasPrefix(s, "p.") {
			t.Fatalf("%q: subject %q lost its prefix", topic, s)
		}
		for _, tok := range strings.Split(s, ".") {
			if tok == "" || tok == "*" || tok == ">" {
				t.Fatalf("%q: subject %q has token %q", topic, s, tok)
			}
		}
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c <= ' ' || c >= 0x7f || c == '*' || c == '>' {
				t.Fatalf("%q: subject %q has byte %q", topic, s, c)
			}
		}
		if got := strings.Count(s, "."); got != strings.Count(topic, ".")+1 {
			t.Fatalf("%q: subject %q has %d dots", topic, s, got)
		}
	})
}
