package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/onair/onair/internal/auth"
	"github.com/onair/onair/internal/onair"
)

//go:embed templates
var embeddedTemplates embed.FS

// pageNames are the page templates; each is parsed together with templates/layout.html
// and templates/parts.html.
var pageNames = []string{
	"home", "channel", "error", "login", "register", "dashboard", "settings",
	"notifications", "admin", "channels", "replay",
}

func (s *Server) parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"asset":    s.assetURL,
		"upper":    strings.ToUpper,
		"isoTime":  func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"fullTime": func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 MST") },
		"ago":      func(t time.Time) string { return ago(s.Now(), t) },
		"plural":   plural,
		"join":     strings.Join,
		"query":    url.QueryEscape,
		"deref":    func(b *bool) bool { return b != nil && *b },
		"hasAsset": func(name string) bool { _, ok := s.assets[name]; return ok },
		"clock":    clock,
	}
	pages := make(map[string]*template.Template, len(pageNames)+1)
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(embeddedTemplates,
			"templates/layout.html", "templates/parts.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		pages[name] = t
	}
	// The embed page has a bare layout of its own.
	t, err := template.New("embed").Funcs(funcs).ParseFS(embeddedTemplates, "templates/embed.html")
	if err != nil {
		return nil, fmt.Errorf("parse template embed: %w", err)
	}
	pages["embed"] = t
	return pages, nil
}

// layoutData is what templates/layout.html needs; every page's data embeds it.
type layoutData struct {
	SiteName  string
	Version   string
	PageTitle string
	Scripts   []string // static asset names, loaded with defer in this order
	User      *onair.User
	CSRFToken string // of the cookie session, for <meta name="csrf-token">
	Unread    int    // unread notifications of User
	Path      string // the request path, for "log in" links that come back here
	Query     string // the search box's value
}

// layout fills the layout of a page for the request's user.
func (s *Server) layout(r *http.Request, title string) layoutData {
	d := layoutData{
		SiteName:  s.siteName(r),
		Version:   s.Version,
		PageTitle: title,
		Scripts:   []string{"app.js", "thumbs.js"},
		Path:      r.URL.Path,
	}
	if u := currentUser(r); u != nil {
		d.User = u
		if sess := auth.SessionFromContext(r.Context()); sess != nil {
			d.CSRFToken = sess.CSRFToken
		}
		n, err := s.Notifications.UnreadCount(r.Context(), u.ID)
		if err != nil {
			s.Logger.Warn("count unread notifications failed", "user_id", u.ID, "err", err)
		}
		d.Unread = n
	}
	return d
}

// siteName returns the site name from the settings, or s.SiteName.
func (s *Server) siteName(r *http.Request) string {
	if s.Settings == nil {
		return s.SiteName
	}
	st, err := s.Settings.Settings(r.Context())
	if err != nil {
		s.Logger.Warn("read site settings failed", "err", err)
		return s.SiteName
	}
	if st.SiteName != "" {
		return st.SiteName
	}
	return s.SiteName
}

// render executes a page into a buffer, so a template failure becomes a clean 500.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page string, data any) {
	var buf bytes.Buffer
	name := "layout"
	if page == "embed" {
		name = "embed"
	}
	if err := s.pages[page].ExecuteTemplate(&buf, name, data); err != nil {
		s.Logger.Error("render page failed", "page", page, "err", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Pages show the signed-in user and a CSRF token: shared caches must not keep them.
	h.Set("Cache-Control", "no-cache, private")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// loginRedirect sends an anonymous visitor of a page that needs an account to the login
// page, which brings them back afterwards.
func loginRedirect(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}

// localPath returns next when it is a path on this site, else "/".
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n\t") {
		return "/"
	}
	return next
}

type errorData struct {
	layoutData
	Status  int
	Heading string
	Message string
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	// "/@name/" is a common typo for "/@name".
	if p := r.URL.Path; r.Method == http.MethodGet && strings.HasPrefix(p, "/@") &&
		strings.Count(p, "/") == 2 && strings.HasSuffix(p, "/") {
		http.Redirect(w, r, strings.TrimSuffix(p, "/"), http.StatusMovedPermanently)
		return
	}
	s.writeErrorPage(w, r, onair.Errorf(onair.ENOTFOUND, "There is nothing at this address."))
}

// ago tells how long before now t was, in words.
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 24*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	case d < 30*24*time.Hour:
		return plural(int(d/(24*time.Hour)), "day") + " ago"
	}
	return "on " + t.UTC().Format("2 Jan 2006")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// clip shortens s to at most n runes, for echoing request input in messages.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// initial returns the first letter of name in upper case.
func initial(name string) string {
	r, _ := utf8.DecodeRuneInString(name)
	if r == utf8.RuneError {
		return "?"
	}
	return strings.ToUpper(string(r))
}
