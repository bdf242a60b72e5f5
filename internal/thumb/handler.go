package thumb

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
)

// cacheMaxAge is how long a client or CDN may keep a thumbnail: short, it changes every
// Interval.
const cacheMaxAge = "public, max-age=5"

// ServeHTTP serves GET/HEAD /thumb/{channel}.jpg (the newest thumbnail) and
// /thumb/{channel}/preview.jpg (the preview strip; X-Preview-Frames tells how many frames
// it holds, side by side). A channel without a thumbnail (offline, audio-only, no
// ffmpeg) gets 404.
func (t *Thumbnailer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method not allowed.", http.StatusMethodNotAllowed)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/thumb/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	var img Image
	var found bool
	if name, ok := strings.CutSuffix(rest, "/preview.jpg"); ok && validName(name) {
		var frames int
		img, frames, found = t.Preview(name)
		if found {
			w.Header().Set("X-Preview-Frames", strconv.Itoa(frames))
		}
	} else if name, ok := strings.CutSuffix(rest, ".jpg"); ok && validName(name) {
		img, found = t.Thumbnail(name)
	}
	if !found {
		w.Header().Set("Cache-Control", "no-store")
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/jpeg")
	h.Set("Cache-Control", cacheMaxAge)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", img.ETag)
	http.ServeContent(w, r, "", img.Time, bytes.NewReader(img.JPEG))
}

// validName reports whether s can be a username ([a-z0-9_]{3,30}).
func validName(s string) bool {
	if len(s) < 3 || len(s) > 30 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}
