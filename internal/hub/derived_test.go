package hub

import "testing"

func TestDerivedNames(t *testing.T) {
	n := DerivedName("alice", "720p")
	if n != "alice~720p" {
		t.Fatalf("DerivedName: %q", n)
	}
	if src, r, ok := SplitDerived(n); !ok || src != "alice" || r != "720p" {
		t.Fatalf("SplitDerived(%q): %q %q %v", n, src, r, ok)
	}
	if _, _, ok := SplitDerived("alice"); ok {
		t.Fatal("a channel name split as derived")
	}
	for _, r := range []string{"720p", "audio", "a", "0123456789abcdef"} {
		if !ValidRendition(r) {
			t.Errorf("%q refused", r)
		}
	}
	for _, r := range []string{"", "720P", "7-20p", "0123456789abcdefg", "../x", "a~b", "ä"} {
		if ValidRendition(r) {
			t.Errorf("%q accepted", r)
		}
	}
}
