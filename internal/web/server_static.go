package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// embeddedStatic holds static/. static/vendor/ has a committed README.md placeholder so the
// embed compiles on a fresh clone; the Makefile copies hls.min.js next to it.
//
//go:embed static
var embeddedStatic embed.FS

// playerAssetPath is the vendored hls.js inside the static FS.
const playerAssetPath = "vendor/hls.min.js"

// graphAssetPath is the vendored uPlot (styled by vendor/uplot.min.css), which graphs.js
// uses to draw the dashboard and admin graphs.
const graphAssetPath = "vendor/uplot.iife.min.js"

// graphScripts returns the scripts of the graphs: none when uPlot is not embedded, and the
// page (templates test hasAsset) says so.
func (s *Server) graphScripts() []string {
	if _, ok := s.assets[graphAssetPath]; !ok {
		return nil
	}
	return []string{graphAssetPath, "graphs.js"}
}

const (
	// cacheVersioned is for an asset requested with its current ?v= version.
	cacheVersioned = "public, max-age=31536000, immutable"
	// cacheDefault is for any other asset request.
	cacheDefault = "public, max-age=3600"
)

// assetTypes pins the MIME types of the assets onair ships, independent of the host's
// mime.types. Other extensions fall back to mime.TypeByExtension, then sniffing.
var assetTypes = map[string]string{
	".css":   "text/css; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".map":   "application/json",
	".json":  "application/json",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".ico":   "image/x-icon",
	".webp":  "image/webp",
	".woff2": "font/woff2",
	".txt":   "text/plain; charset=utf-8",
}

// asset is one static file, held in memory.
type asset struct {
	name    string
	data    []byte
	gz      []byte // gzip of data; nil when not worth it
	ctype   string
	version string // short content hash, used as ?v= and ETag
}

// loadAssets reads every file of fsys (placeholders *.md excluded) into memory.
func loadAssets(fsys fs.FS) (map[string]*asset, error) {
	assets := make(map[string]*asset)
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || path.Ext(p) == ".md" {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		a := &asset{
			name:    p,
			data:    data,
			ctype:   assetType(p, data),
			version: hex.EncodeToString(sum[:6]),
		}
		if a.compressible() {
			if a.gz, err = gzipBytes(data); err != nil {
				return fmt.Errorf("compress %s: %w", p, err)
			}
		}
		assets[p] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load static assets: %w", err)
	}
	return assets, nil
}

func assetType(name string, data []byte) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := assetTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return http.DetectContentType(data)
}

func (a *asset) compressible() bool {
	if len(a.data) < 1024 {
		return false
	}
	return strings.HasPrefix(a.ctype, "text/") || strings.HasPrefix(a.ctype, "image/svg") ||
		strings.HasPrefix(a.ctype, "application/json")
}

func gzipBytes(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// assetURL returns the URL of a static asset with its version, for templates.
func (s *Server) assetURL(name string) string {
	if a, ok := s.assets[name]; ok {
		return "/static/" + name + "?v=" + a.version
	}
	return "/static/" + name
}

func (s *Server) handleStatic(w http.ResponseWriter, r *http.Request) {
	a, ok := s.assets[r.PathValue("path")]
	if !ok {
		s.handleNotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	if r.URL.Query().Get("v") == a.version {
		h.Set("Cache-Control", cacheVersioned)
	} else {
		h.Set("Cache-Control", cacheDefault)
	}
	body, etag := a.data, `"`+a.version+`"`
	if a.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			body, etag = a.gz, `"`+a.version+`-gz"`
			h.Set("Content-Encoding", "gzip")
		}
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			params = strings.ReplaceAll(params, " ", "")
			return params != "q=0" && params != "q=0.0" && params != "q=0.00" && params != "q=0.000"
		}
	}
	return false
}
