package hls

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseTSRequest feeds request paths to the MPEG-TS side's parsers: a parsed path
// or segment name must print back to the same text.
func FuzzParseTSRequest(f *testing.F) {
	f.Add("/hls/alice/ts/0123456789abcdef-42.ts")
	f.Add("/hls/alice/index.m3u8")
	f.Add("/bob/ts/index.m3u8")
	f.Add("/hls/alice/ts/0123456789abcdef-007.ts")
	f.Fuzz(func(t *testing.T, p string) {
		name, dir, file, ok := splitPath(p)
		if ok {
			back := name + "/" + file
			if dir != "" {
				back = name + "/" + dir + "/" + file
			}
			if p != "/hls/"+back && p != "/"+back {
				t.Fatalf("%q split as %q %q %q", p, name, dir, file)
			}
		}
		file = p[strings.LastIndexByte(p, '/')+1:]
		if id, seq, ok := parseSegmentName(file); ok {
			if got := id + "-" + strconv.FormatUint(seq, 10) + ".ts"; got != file {
				t.Fatalf("%q parsed as %q %d", file, id, seq)
			}
		}
	})
}
