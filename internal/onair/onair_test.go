package onair

import (
	"regexp"
	"strings"
	"testing"
)

func TestValidateUsername(t *testing.T) {
	for _, name := range []string{"abc", "alice_01", "a_b", strings.Repeat("z", 30), "007"} {
		if err := ValidateUsername(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	for _, name := range []string{"", "ab", strings.Repeat("z", 31), "Alice", "al ice", "al-ice", "al.ice",
		"alïce", "al/ice", "alice\n", "../x", "admin", "hls"} {
		if ValidateUsername(name) == nil {
			t.Errorf("%q accepted", name)
		}
	}
}

// FuzzUsernameChars checks the loop against the rule's regular expression.
func FuzzUsernameChars(f *testing.F) {
	for _, s := range []string{"abc", "ab", "Alice", "alïce", "a_b_c", strings.Repeat("a", 31)} {
		f.Add(s)
	}
	re := regexp.MustCompile(`^[a-z0-9_]{3,30}$`)
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := usernameChars(s), re.MatchString(s); got != want {
			t.Fatalf("%q: %v, the rule says %v", s, got, want)
		}
	})
}
