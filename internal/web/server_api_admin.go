package web

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/onair/onair/internal/onair"
)

// Limits of the admin calls.
const (
	maxAdminUsers   = 200
	maxSiteNameLen  = 60
	adminPageLength = 100
)

// handleAPIAdminUsers lists users, newest first, with their live state (admins only;
// ?offset=, ?limit= up to 200).
func (s *Server) handleAPIAdminUsers(w http.ResponseWriter, r *http.Request) {
	admin := s.requireAdmin(w, r)
	if admin == nil {
		return
	}
	offset, limit, err := pageParams(r, maxAdminUsers)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	users, err := s.adminUsers(r, admin, offset, limit)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, users)
}

func (s *Server) adminUsers(r *http.Request, admin *onair.User, offset, limit int) ([]userJSON, error) {
	users, err := s.Accounts.ListUsers(r.Context(), admin, offset, limit)
	if err != nil {
		return nil, err
	}
	out := make([]userJSON, 0, len(users))
	for _, u := range users {
		j := newUserJSON(u)
		_, live := s.Live.LiveStream(u.Username)
		j.Live = &live
		out = append(out, j)
	}
	return out, nil
}

func (s *Server) handleAPIAdminBan(w http.ResponseWriter, r *http.Request) { s.setBanned(w, r, true) }
func (s *Server) handleAPIAdminUnban(w http.ResponseWriter, r *http.Request) {
	s.setBanned(w, r, false)
}

// setBanned bans or unbans a user site-wide; a ban also cuts their live stream.
func (s *Server) setBanned(w http.ResponseWriter, r *http.Request, banned bool) {
	admin := s.requireAdmin(w, r)
	if admin == nil {
		return
	}
	if err := decodeJSON(w, r, &struct{}{}, true); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	u, err := s.findUser(r, r.PathValue("username"))
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	if err := s.Accounts.SetUserBanned(r.Context(), admin, u.ID, banned); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	if banned {
		s.endStream(u.Username)
	}
	u.Banned = banned
	writeJSON(w, http.StatusOK, newUserJSON(u))
}

// findUser looks a user up by a name from a URL.
func (s *Server) findUser(r *http.Request, name string) (*onair.User, error) {
	if onair.ValidateUsername(name) != nil {
		return nil, onair.Errorf(onair.ENOTFOUND, "There is no user %q.", clip(name, 64))
	}
	u, err := s.Users.FindUserByUsername(r.Context(), name)
	if onair.ErrorCode(err) == onair.ENOTFOUND {
		return nil, onair.Errorf(onair.ENOTFOUND, "There is no user %q.", name)
	}
	return u, err
}

// handleAPIAdminEndStream cuts a channel's live stream (admins only). The publisher may
// reconnect with its key; ban the user or rotate the key to keep them off.
func (s *Server) handleAPIAdminEndStream(w http.ResponseWriter, r *http.Request) {
	if s.requireAdmin(w, r) == nil {
		return
	}
	if err := decodeJSON(w, r, &struct{}{}, true); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	name := r.PathValue("username")
	if !s.endStream(name) {
		s.writeAPIError(w, r, onair.Errorf(onair.ENOTFOUND, "@%s is not live.", clip(name, 64)))
		return
	}
	writeNoContent(w)
}

// handleAPIAdminSettings writes the site settings (admins only).
func (s *Server) handleAPIAdminSettings(w http.ResponseWriter, r *http.Request) {
	if s.requireAdmin(w, r) == nil {
		return
	}
	st, err := s.Settings.Settings(r.Context())
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

type settingsRequest struct {
	SiteName         *string `json:"site_name"`
	RegistrationOpen *bool   `json:"registration_open"`
}

// handleAPIAdminUpdateSettings changes the site settings (admins only); absent fields are
// left alone.
func (s *Server) handleAPIAdminUpdateSettings(w http.ResponseWriter, r *http.Request) {
	admin := s.requireAdmin(w, r)
	if admin == nil {
		return
	}
	var req settingsRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	st, err := s.Settings.Settings(r.Context())
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	next := *st
	if req.SiteName != nil {
		name := strings.TrimSpace(*req.SiteName)
		if name == "" || utf8.RuneCountInString(name) > maxSiteNameLen {
			s.writeAPIError(w, r, onair.Errorf(onair.EINVALID, "Site name must be 1 to %d characters.", maxSiteNameLen))
			return
		}
		next.SiteName = name
	}
	if req.RegistrationOpen != nil {
		next.RegistrationOpen = *req.RegistrationOpen
	}
	st, err = s.Settings.UpdateSettings(r.Context(), admin, next)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
