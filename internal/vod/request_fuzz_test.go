package vod

import (
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// FuzzParseRequest feeds the recording id and file name of a /vod/ request to their
// parsers: what they accept prints back to the same text.
func FuzzParseRequest(f *testing.F) {
	f.Add("12", "seg-3.m4s")
	f.Add("007", "init-0.mp4")
	f.Add("-1", "seg-.m4s")
	f.Fuzz(func(t *testing.T, id, name string) {
		if n, ok := parseID(id); ok && (n <= 0 || strconv.FormatInt(n, 10) != id) {
			t.Fatalf("id %q parsed as %d", id, n)
		}
		for _, pre := range [][2]string{{"init-", ".mp4"}, {"seg-", ".m4s"}} {
			if n, ok := parseIndexName(name, pre[0], pre[1]); ok && pre[0]+strconv.Itoa(n)+pre[1] != name {
				t.Fatalf("%q parsed as %d", name, n)
			}
		}
	})
}

// FuzzDecodeJSON feeds request bodies to the JSON decoder of the recordings API.
func FuzzDecodeJSON(f *testing.F) {
	f.Add(`{"title":"My stream"}`)
	f.Add(`{"title":"a"} {"title":"b"}`)
	f.Add(`{"title":1}`)
	f.Add(`{"other":true}`)
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("PATCH", "/api/v1/recordings/1", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var v struct {
			Title *string `json:"title"`
		}
		if err := decodeJSON(httptest.NewRecorder(), r, &v); err == nil && !json.Valid([]byte(body)) {
			t.Fatalf("invalid JSON %q accepted", body)
		}
	})
}
