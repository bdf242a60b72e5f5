package auth

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// MaxFormPeek is how much of a form body Middleware reads, at most, to find the
// csrf_token field. The body is given back to the handler whole.
const MaxFormPeek = 1 << 20

// checkOrigin returns why a state-changing request looks cross-origin, or "" when it
// does not. See the package documentation.
func checkOrigin(r *http.Request) string {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "":
	case "same-origin", "none":
		// Browsers set this header themselves and pages cannot forge it.
		return ""
	default:
		return "sec-fetch-site"
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if !sameHost(origin, r.Host) {
			return "origin"
		}
		return ""
	}
	if referer := r.Header.Get("Referer"); referer != "" && !sameHost(referer, r.Host) {
		return "referer"
	}
	return ""
}

// sameHost reports whether the URL rawURL (an Origin or a Referer) names the host
// (and port) host. Default ports are ignored, and so is the letter case.
func sameHost(rawURL, host string) bool {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false // "null", garbage, or a scheme a page of ours never has
	}
	return canonicalHost(u.Host, u.Scheme) == canonicalHost(host, u.Scheme)
}

// canonicalHost lowercases hostport and drops the scheme's default port.
func canonicalHost(hostport, scheme string) string {
	hostport = strings.ToLower(hostport)
	h, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return hostport
}

// formCSRFToken returns the csrf_token field of a urlencoded or multipart form body, or
// "" when there is none within the first MaxFormPeek bytes. It puts the body back so
// that the handler reads it whole.
func formCSRFToken(r *http.Request) string {
	if r.Body == nil || r.Body == http.NoBody {
		return ""
	}
	mediaType, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	var boundary string
	switch mediaType {
	case "application/x-www-form-urlencoded":
	case "multipart/form-data":
		if boundary = params["boundary"]; boundary == "" {
			return ""
		}
	default:
		return ""
	}

	body := r.Body
	peek, err := io.ReadAll(io.LimitReader(body, MaxFormPeek+1))
	r.Body = &replayBody{Reader: io.MultiReader(bytes.NewReader(peek), body), body: body}
	if err != nil {
		return ""
	}
	truncated := len(peek) > MaxFormPeek
	if truncated {
		peek = peek[:MaxFormPeek]
	}
	if boundary != "" {
		return multipartField(peek, boundary, CSRFField)
	}
	return urlencodedField(peek, truncated, CSRFField)
}

// urlencodedField returns the first value of name in a urlencoded body. When the body
// was truncated, its last (maybe partial) pair is ignored.
func urlencodedField(body []byte, truncated bool, name string) string {
	if truncated {
		i := bytes.LastIndexByte(body, '&')
		if i < 0 {
			return ""
		}
		body = body[:i]
	}
	for len(body) > 0 {
		var pair []byte
		pair, body, _ = bytes.Cut(body, []byte("&"))
		k, v, _ := bytes.Cut(pair, []byte("="))
		if key, err := url.QueryUnescape(string(k)); err != nil || key != name {
			continue
		}
		if value, err := url.QueryUnescape(string(v)); err == nil {
			return value
		}
		return ""
	}
	return ""
}

// multipartField returns the value of the first form field called name in a multipart
// body (which may be cut short), or "".
func multipartField(body []byte, boundary, name string) string {
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		p, err := mr.NextPart()
		if err != nil {
			return ""
		}
		if p.FormName() != name || p.FileName() != "" {
			continue
		}
		v, err := io.ReadAll(io.LimitReader(p, maxTokenLen+1))
		if err != nil || len(v) > maxTokenLen {
			return ""
		}
		return string(v)
	}
}

// replayBody is a request body whose first bytes were already read and are replayed.
type replayBody struct {
	io.Reader
	body io.ReadCloser
}

func (b *replayBody) Close() error { return b.body.Close() }
