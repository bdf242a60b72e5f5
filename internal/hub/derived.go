package hub

import "strings"

// DerivedSeparator joins a source stream's name and a rendition's name in the name of a
// derived stream (SourceDerived, a transcoded rendition): "alice~720p". It cannot appear
// in a channel name.
const DerivedSeparator = "~"

// DerivedName returns the name of rendition's derived stream of source.
func DerivedName(source, rendition string) string { return source + DerivedSeparator + rendition }

// SplitDerived returns the source and rendition of a derived stream's name, and false for
// any other name.
func SplitDerived(name string) (source, rendition string, ok bool) {
	return strings.Cut(name, DerivedSeparator)
}

// ValidRendition reports whether r can name a rendition (and a directory of its HLS and
// DASH URLs): 1 to 16 lowercase letters and digits.
func ValidRendition(r string) bool {
	if r == "" || len(r) > 16 {
		return false
	}
	for i := 0; i < len(r); i++ {
		if c := r[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
