// Package web is onair's HTTP front: the server-rendered html/template pages of the
// product (home, channel pages with the hls.js player, live chat and replays, replay
// pages, embeds, the broadcast dashboard, account pages, notifications, site admin), the
// JSON API under /api/v1, the embedded static assets, and the mount points of the media
// and chat handlers that internal/app passes in as http.Handler values. The recordings'
// media (/vod/) and JSON API are internal/vod's; web only renders their pages.
//
// Every asset is embedded in the binary (templates/ and static/), so the site needs no CDN at
// run time. Pages carry no inline script or style: JavaScript lives in small files under
// static/, and every response carries a Content-Security-Policy without 'unsafe-inline'.
// Only the /embed/ pages may be framed by other sites. The vendored player
// (static/vendor/hls.min.js) is copied there by the Makefile from npm; a binary built without
// it says on the channel page that the player asset is missing.
//
// Authentication is internal/auth's middleware: a session cookie (state-changing calls then
// carry the X-CSRF-Token header, which pages read from <meta name="csrf-token">) or an
// "Authorization: Bearer" personal API token. Authorisation is checked by the onair
// services from the actor web passes them; web adds the checks that no service owns (admin
// routes, ending a stream).
//
// Domain errors (onair.Error codes) are mapped to HTTP statuses in one place, resolveError.
package web

import (
	"context"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/onair/onair/internal/auth"
	"github.com/onair/onair/internal/onair"
)

// Server serves the web site. It is an http.Handler; the caller owns the http.Server.
// Set the fields, call Start once, then serve.
type Server struct {
	// Logger receives the logs of failed requests (500s). Default: discard.
	Logger *slog.Logger

	// SiteName is shown in page titles and the header when the site settings
	// (Settings.SiteName) leave it empty. Default: "onair".
	SiteName string

	// Channels is not used any more: Platform serves every channel lookup.
	//
	// Deprecated: kept so that existing wiring compiles; leave it nil.
	Channels onair.ChannelService

	// Live lists the live streams. Required.
	Live onair.LiveDirectory

	// Users creates accounts (register) and finds users by name. Required.
	Users onair.UserService

	// Accounts authenticates, changes passwords, deletes accounts, and lists and bans
	// users for admins. Required.
	Accounts onair.AccountService

	// Sessions creates personal API tokens. Required. (Browser sessions go through Auth.)
	Sessions onair.SessionService

	// Keys reads and rotates stream keys. Required.
	Keys onair.StreamKeyService

	// Platform serves channel settings, tags, search and follows. Required.
	Platform onair.PlatformChannelService

	// Comments stores comments on videos. Required.
	Comments onair.CommentService

	// Recordings lists the replays of channels for the channel pages and the replay pages
	// (GET /@{name}/replays/{id}). Their media (/vod/) and JSON API
	// (/api/v1/recordings…) are internal/vod's. Default: no replays (channel pages list
	// none, replay pages are 404s, and the live player offers no "From the start").
	Recordings onair.RecordingService

	// Posters gives the poster images of recordings for the replay list (*vod.Server).
	// Default: none, every replay shows the neutral poster box.
	Posters PosterSource

	// Notifications stores the site notifications of the bell. Required.
	Notifications onair.NotificationService

	// Settings holds the site settings admins change (site name, registration). Required.
	Settings onair.SettingsService

	// Auth resolves the session cookie or bearer token of every request except static
	// assets, /hls/ and /healthz, enforces CSRF, and starts and ends sessions. Required.
	Auth *auth.Authenticator

	// LoginThrottle limits failed logins (and failed password checks on password change and
	// account deletion) per account, under keys "user:NAME".
	// Default: 5 failures per 15 minutes.
	LoginThrottle *auth.Throttle

	// LoginIPThrottle limits failed logins per client address, under keys "ip:ADDR".
	// Default: 20 failures per 15 minutes.
	LoginIPThrottle *auth.Throttle

	// RegisterThrottle limits sign-ups per client address (every attempt counts), under
	// keys "ip:ADDR". Default: 10 per hour.
	RegisterThrottle *auth.Throttle

	// ClientIP returns the address that the per-IP throttles count. Default: the host of
	// r.RemoteAddr (auth.ClientIP(r, false)). Behind a reverse proxy, the app passes
	// func(r) string { return auth.ClientIP(r, true) }.
	ClientIP func(r *http.Request) string

	// Chat serves GET /api/v1/channels/{username}/chat (WebSocket) and
	// GET /api/v1/channels/{username}/chat/history; it sees the full request path, after
	// Auth (so auth.UserFromContext works in it). Default: no chat (the routes answer 404
	// and channel pages show no chat panel).
	Chat http.Handler

	// HLS serves /hls/…; it sees the full request path and runs without Auth.
	// Default: every /hls/ path is a 404.
	HLS http.Handler

	// DASH serves /dash/…; it sees the full request path and runs without Auth.
	// Default: every /dash/ path is a 404.
	DASH http.Handler

	// Transcoding, when set, returns the transcoding state for the admin page.
	// Default: the admin page does not mention transcoding.
	Transcoding func() TranscodeStatus

	// EndStream cuts the live stream of a channel (admin "end stream", stream key rotation,
	// account deletion, ban) and reports whether one was live. Default: nothing is cut
	// and admin "end stream" answers 404.
	EndStream func(channel string) bool

	// Viewers returns the viewers of a live channel that the Live directory does not count
	// (for example open watch pages, counted by chat connections). It is added to
	// LiveStream.Viewers wherever a viewer count is shown or returned. Default: none.
	Viewers func(channel string) int

	// RTMPURL returns the RTMP base URL shown on pages, e.g. "rtmp://HOST/live".
	// Default: "rtmp://" + the host of the request's Host header (without port) + "/live".
	RTMPURL func(r *http.Request) string
	// RTMPSURL, when set, returns the RTMPS (RTMP over TLS) base URL shown to
	// broadcasters beside RTMPURL, e.g. "rtmps://HOST/live"; "" when there is none.
	// Default: none.
	RTMPSURL func(r *http.Request) string

	// Version is shown in the page footer.
	Version string

	// Now returns the current time, for "started 5 minutes ago". Default: time.Now.
	Now func() time.Time

	// static overrides the embedded static FS (tests).
	static fs.FS

	handler     http.Handler
	pages       map[string]*template.Template
	assets      map[string]*asset
	playerAsset bool
}

// Default throttle limits, used when the Server's throttle fields are nil.
const (
	DefaultLoginMax             = 5
	DefaultLoginIPMax           = 20
	DefaultLoginWindow          = 15 * time.Minute
	DefaultRegisterMax          = 10
	DefaultRegisterWindow       = time.Hour
	maxBodyBytes          int64 = 64 << 10
)

// Start applies defaults, checks the dependencies, parses the embedded templates, loads
// the static assets and builds the routes.
func (s *Server) Start() error {
	required := []struct {
		name string
		set  bool
	}{
		{"live directory", s.Live != nil},
		{"user service", s.Users != nil},
		{"account service", s.Accounts != nil},
		{"session service", s.Sessions != nil},
		{"stream key service", s.Keys != nil},
		{"platform channel service", s.Platform != nil},
		{"comment service", s.Comments != nil},
		{"notification service", s.Notifications != nil},
		{"settings service", s.Settings != nil},
		{"authenticator", s.Auth != nil},
	}
	for _, r := range required {
		if !r.set {
			return errors.New(r.name + " is not set")
		}
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.SiteName == "" {
		s.SiteName = "onair"
	}
	if s.RTMPURL == nil {
		s.RTMPURL = defaultRTMPURL
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.ClientIP == nil {
		s.ClientIP = remoteIP
	}
	if s.LoginThrottle == nil {
		s.LoginThrottle = &auth.Throttle{Max: DefaultLoginMax, Window: DefaultLoginWindow, Now: s.Now}
	}
	if s.LoginIPThrottle == nil {
		s.LoginIPThrottle = &auth.Throttle{Max: DefaultLoginIPMax, Window: DefaultLoginWindow, Now: s.Now}
	}
	if s.RegisterThrottle == nil {
		s.RegisterThrottle = &auth.Throttle{Max: DefaultRegisterMax, Window: DefaultRegisterWindow, Now: s.Now}
	}
	if s.static == nil {
		sub, err := fs.Sub(embeddedStatic, "static")
		if err != nil {
			return err
		}
		s.static = sub
	}

	var err error
	if s.assets, err = loadAssets(s.static); err != nil {
		return err
	}
	_, s.playerAsset = s.assets[playerAssetPath]
	if s.pages, err = s.parseTemplates(); err != nil {
		return err
	}

	s.handler = securityHeaders(s.routes())
	return nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.handler == nil {
		http.Error(w, "server not started", http.StatusServiceUnavailable)
		return
	}
	s.handler.ServeHTTP(w, r)
}

// routes builds the router. Static assets, /hls/, /dash/ and /healthz skip the
// authenticator, so that a player's segment requests never touch the session store.
func (s *Server) routes() http.Handler {
	app := http.NewServeMux()

	// Pages.
	app.HandleFunc("GET /{$}", s.handleHome)
	app.HandleFunc("GET /{name}", s.handleChannel) // "/@username"; anything else is a 404
	// GET /@{name}/replays/{id} (a replay's page) is served from the "/" catch-all: as a
	// pattern it would conflict with "/api/".
	app.HandleFunc("GET /embed/{name}", s.handleEmbed)
	app.HandleFunc("GET /tags/{tag}", s.handleTagPage)
	app.HandleFunc("GET /search", s.handleSearchPage)
	app.HandleFunc("GET /login", s.handleLoginPage)
	app.HandleFunc("GET /register", s.handleRegisterPage)
	app.HandleFunc("POST /logout", s.handleLogoutForm)
	app.HandleFunc("GET /dashboard", s.handleDashboard)
	app.HandleFunc("GET /settings", s.handleSettingsPage)
	app.HandleFunc("GET /notifications", s.handleNotificationsPage)
	app.HandleFunc("GET /admin", s.handleAdminPage)

	// JSON API.
	app.HandleFunc("POST /api/v1/register", s.handleAPIRegister)
	app.HandleFunc("POST /api/v1/login", s.handleAPILogin)
	app.HandleFunc("POST /api/v1/logout", s.handleAPILogout)
	app.HandleFunc("POST /api/v1/tokens", s.handleAPICreateToken)
	app.HandleFunc("GET /api/v1/me", s.handleAPIMe)
	app.HandleFunc("DELETE /api/v1/me", s.handleAPIDeleteMe)
	app.HandleFunc("POST /api/v1/me/password", s.handleAPIChangePassword)
	app.HandleFunc("GET /api/v1/me/stream-key", s.handleAPIStreamKey)
	app.HandleFunc("POST /api/v1/me/stream-key", s.handleAPIResetStreamKey)
	app.HandleFunc("PATCH /api/v1/me/channel", s.handleAPIUpdateChannel)
	app.HandleFunc("GET /api/v1/me/following", s.handleAPIFollowing)
	app.HandleFunc("GET /api/v1/me/notifications", s.handleAPINotifications)
	app.HandleFunc("POST /api/v1/me/notifications/read", s.handleAPIMarkNotificationsRead)
	app.HandleFunc("GET /api/v1/streams", s.handleAPIStreams)
	app.HandleFunc("GET /api/v1/streams/{username}", s.handleAPIStream)
	app.HandleFunc("GET /api/v1/channels/{username}", s.handleAPIChannel)
	app.HandleFunc("PUT /api/v1/channels/{username}/follow", s.handleAPIFollow)
	app.HandleFunc("DELETE /api/v1/channels/{username}/follow", s.handleAPIUnfollow)
	app.HandleFunc("GET /api/v1/tags/{tag}", s.handleAPITag)
	app.HandleFunc("GET /api/v1/tags", s.handleAPITags)
	app.HandleFunc("GET /api/v1/search", s.handleAPISearch)
	app.HandleFunc("GET /api/v1/videos/{id}/comments", s.handleAPIComments)
	app.HandleFunc("POST /api/v1/videos/{id}/comments", s.handleAPICreateComment)
	app.HandleFunc("PATCH /api/v1/comments/{id}", s.handleAPIUpdateComment)
	app.HandleFunc("DELETE /api/v1/comments/{id}", s.handleAPIDeleteComment)
	app.HandleFunc("GET /api/v1/admin/users", s.handleAPIAdminUsers)
	app.HandleFunc("POST /api/v1/admin/users/{username}/ban", s.handleAPIAdminBan)
	app.HandleFunc("POST /api/v1/admin/users/{username}/unban", s.handleAPIAdminUnban)
	app.HandleFunc("POST /api/v1/admin/streams/{username}/end", s.handleAPIAdminEndStream)
	app.HandleFunc("GET /api/v1/admin/settings", s.handleAPIAdminSettings)
	app.HandleFunc("PATCH /api/v1/admin/settings", s.handleAPIAdminUpdateSettings)
	if s.Chat != nil {
		app.Handle("GET /api/v1/channels/{username}/chat", s.Chat)
		app.Handle("GET /api/v1/channels/{username}/chat/history", s.Chat)
	}
	app.HandleFunc("/api/", s.handleAPINotFound)
	app.HandleFunc("/", s.handleOther)

	root := http.NewServeMux()
	root.HandleFunc("GET /healthz", s.handleHealthz)
	root.HandleFunc("GET /static/{path...}", s.handleStatic)
	if s.HLS != nil {
		root.Handle("/hls/", s.HLS)
	}
	if s.DASH != nil {
		root.Handle("/dash/", s.DASH)
	}
	root.Handle("/", s.Auth.Middleware(app))
	return root
}

// PosterSource tells where a recording's poster image is (*vod.Server).
type PosterSource interface {
	// PosterPath returns the address of the recording's poster, or "" without one.
	PosterPath(ctx context.Context, id int64) string
}

// contentSecurityPolicy allows only onair's own scripts, styles and connections. Media
// comes from blob: URLs (hls.js feeds Media Source Extensions) and hls.js may start its
// worker from a blob: URL. frameAncestors is "'none'" except on embed pages.
func contentSecurityPolicy(frameAncestors string) string {
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"media-src 'self' blob:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; " +
		"base-uri 'none'; form-action 'self'; frame-ancestors " + frameAncestors
}

var (
	cspDefault = contentSecurityPolicy("'none'")
	cspEmbed   = contentSecurityPolicy("*")
)

// securityHeaders sets the headers every response carries. Only the embed pages may be
// framed: allowFraming drops X-Frame-Options and relaxes frame-ancestors for them.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", cspDefault)
		next.ServeHTTP(w, r)
	})
}

// SecurityHeaders sets the headers of every web response (nosniff, Referrer-Policy, a
// Content-Security-Policy without 'unsafe-inline' scripts, no framing) on the responses
// of next. The app puts it in front of the routes that do not go through Server (/vod/,
// /stat, /metrics); Server's own responses carry them already.
func SecurityHeaders(next http.Handler) http.Handler { return securityHeaders(next) }

// allowFraming lets other sites put the response in an iframe (embed pages only).
func allowFraming(w http.ResponseWriter) {
	h := w.Header()
	h.Del("X-Frame-Options")
	h.Set("Content-Security-Policy", cspEmbed)
}

func (s *Server) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok"))
}

// requestHost returns the host of r's Host header without its port; IPv6 addresses keep
// their brackets so the result can go into a URL.
func requestHost(r *http.Request) string {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		host = "localhost"
	}
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

func defaultRTMPURL(r *http.Request) string {
	return "rtmp://" + requestHost(r) + "/live"
}

// remoteIP returns the address of the peer.
func remoteIP(r *http.Request) string {
	return auth.ClientIP(r, false)
}

// baseURL returns the scheme and host the request came to, e.g. "http://example.com:8080".
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + host
}

// currentUser returns the signed-in user of the request, or nil.
func currentUser(r *http.Request) *onair.User {
	return auth.UserFromContext(r.Context())
}

// viewers returns the viewer count of a live stream: the directory's count plus the
// extra viewers of s.Viewers.
func (s *Server) viewers(ls onair.LiveStream) int {
	n := ls.Viewers
	if s.Viewers != nil {
		n += s.Viewers(ls.Channel)
	}
	return n
}

// liveStream returns the named live stream with its full viewer count.
func (s *Server) liveStream(name string) (onair.LiveStream, bool) {
	ls, ok := s.Live.LiveStream(name)
	if ok {
		ls.Viewers = s.viewers(ls)
	}
	return ls, ok
}

// liveStreams returns the live streams with their full viewer counts, most viewers
// first (then by name). The directory's slice is not modified.
func (s *Server) liveStreams() []onair.LiveStream {
	src := s.Live.LiveStreams()
	out := make([]onair.LiveStream, len(src))
	for i, ls := range src {
		ls.Viewers = s.viewers(ls)
		out[i] = ls
	}
	sortByViewers(out)
	return out
}
