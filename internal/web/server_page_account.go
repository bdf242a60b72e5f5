package web

import (
	"net/http"

	"github.com/onair/onair/internal/onair"
)

type authPageData struct {
	layoutData
	Next             string // where to go after signing in
	RegistrationOpen bool
	MinPassword      int
}

// minPasswordLen is shown in the sign-up form; the store enforces it.
const minPasswordLen = 8

func (s *Server) authPage(w http.ResponseWriter, r *http.Request, page, title string) {
	next := localPath(r.URL.Query().Get("next"))
	if currentUser(r) != nil {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	data := authPageData{layoutData: s.layout(r, title), Next: next, MinPassword: minPasswordLen}
	st, err := s.Settings.Settings(r.Context())
	if err != nil {
		s.writeErrorPage(w, r, err)
		return
	}
	data.RegistrationOpen = st.RegistrationOpen
	data.Scripts = append(data.Scripts, "account.js")
	s.render(w, r, http.StatusOK, page, data)
}

func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	s.authPage(w, r, "login", "Log in")
}

func (s *Server) handleRegisterPage(w http.ResponseWriter, r *http.Request) {
	s.authPage(w, r, "register", "Sign up")
}

// handleLogoutForm is the header's log-out button: a plain form post (with the
// csrf_token field the authenticator checks) that works without JavaScript.
func (s *Server) handleLogoutForm(w http.ResponseWriter, r *http.Request) {
	if err := s.Auth.EndSession(w, r); err != nil {
		s.writeErrorPage(w, r, err)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

type dashboardData struct {
	layoutData
	Channel     *onair.ChannelInfo
	Tags        string // comma separated, for the form
	RTMPURL     string
	RTMPSURL    string // "" without RTMPS
	Live        bool
	Stream      onair.LiveStream
	APIPath     string
	MaxTags     int
	MaxTitle    int
	MaxDesc     int
	ChannelPath string
}

// handleDashboard is the broadcast dashboard: OBS settings with the masked stream key,
// channel settings, and the live stream's health.
func (s *Server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	u := currentUser(r)
	if u == nil {
		loginRedirect(w, r)
		return
	}
	ci, err := s.Platform.ChannelInfo(r.Context(), u.Username)
	if err != nil {
		s.writeErrorPage(w, r, err)
		return
	}
	data := dashboardData{
		layoutData:  s.layout(r, "Dashboard"),
		Channel:     ci,
		RTMPURL:     s.RTMPURL(r),
		APIPath:     "/api/v1/streams/" + u.Username,
		MaxTags:     onair.MaxTags,
		MaxTitle:    onair.MaxTitleLen,
		MaxDesc:     onair.MaxDescriptionLen,
		ChannelPath: "/@" + u.Username,
	}
	for i, t := range ci.Tags {
		if i > 0 {
			data.Tags += ", "
		}
		data.Tags += t
	}
	if s.RTMPSURL != nil {
		if u := s.RTMPSURL(r); u != data.RTMPURL {
			data.RTMPSURL = u
		}
	}
	data.Stream, data.Live = s.liveStream(u.Username)
	data.Scripts = append(data.Scripts, "dashboard.js")
	data.Scripts = append(data.Scripts, s.graphScripts()...)
	s.render(w, r, http.StatusOK, "dashboard", data)
}

type settingsData struct {
	layoutData
	MinPassword int
}

// handleSettingsPage lets the user change the password, create API tokens and delete the
// account.
func (s *Server) handleSettingsPage(w http.ResponseWriter, r *http.Request) {
	if currentUser(r) == nil {
		loginRedirect(w, r)
		return
	}
	data := settingsData{layoutData: s.layout(r, "Account settings"), MinPassword: minPasswordLen}
	data.Scripts = append(data.Scripts, "account.js")
	s.render(w, r, http.StatusOK, "settings", data)
}

type notificationsData struct {
	layoutData
	Notifications []*onair.Notification
}

// handleNotificationsPage lists the user's notifications; notifications.js marks them read.
func (s *Server) handleNotificationsPage(w http.ResponseWriter, r *http.Request) {
	u := currentUser(r)
	if u == nil {
		loginRedirect(w, r)
		return
	}
	resp, err := s.notifications(r, u, maxNotifications)
	if err != nil {
		s.writeErrorPage(w, r, err)
		return
	}
	data := notificationsData{layoutData: s.layout(r, "Notifications"), Notifications: resp.Notifications}
	data.Scripts = append(data.Scripts, "notifications.js")
	s.render(w, r, http.StatusOK, "notifications", data)
}

type adminData struct {
	layoutData
	Settings *onair.Settings
	Users    []userJSON
	Page     int
	PrevPage int // 0: none
	NextPage int // 0: none
	// Transcode is the transcoding state; nil when the server has no transcoding.
	Transcode *TranscodeStatus
}

// handleAdminPage is the site admin page: site settings and users (?page=N, 100 a page).
func (s *Server) handleAdminPage(w http.ResponseWriter, r *http.Request) {
	u := currentUser(r)
	if u == nil {
		loginRedirect(w, r)
		return
	}
	if !u.IsAdmin {
		s.writeErrorPage(w, r, onair.Errorf(onair.EFORBIDDEN, "Only site admins may see this page."))
		return
	}
	page := 1
	if v := r.URL.Query().Get("page"); v != "" {
		n, err := parseID(v, "page")
		if err != nil || n > 1e6 {
			s.writeErrorPage(w, r, onair.Errorf(onair.ENOTFOUND, "No such page."))
			return
		}
		page = int(n)
	}
	st, err := s.Settings.Settings(r.Context())
	if err != nil {
		s.writeErrorPage(w, r, err)
		return
	}
	// One more than a page tells whether there is a next one.
	users, err := s.adminUsers(r, u, (page-1)*adminPageLength, adminPageLength+1)
	if err != nil {
		s.writeErrorPage(w, r, err)
		return
	}
	data := adminData{layoutData: s.layout(r, "Site admin"), Settings: st, Page: page}
	if len(users) > adminPageLength {
		users, data.NextPage = users[:adminPageLength], page+1
	}
	if page > 1 {
		data.PrevPage = page - 1
	}
	data.Users = users
	if s.Transcoding != nil {
		ts := s.Transcoding()
		data.Transcode = &ts
	}
	data.Scripts = append(data.Scripts, "admin.js")
	data.Scripts = append(data.Scripts, s.graphScripts()...)
	s.render(w, r, http.StatusOK, "admin", data)
}
