package web

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/onair/onair/internal/auth"
	"github.com/onair/onair/internal/onair"
)

// msgBadLogin is the one answer to a wrong username or password, so that a login does not
// tell whether an account exists.
const msgBadLogin = "Invalid username or password."

// maxTokenName limits the name of a personal API token; defaultTokenName is the name of
// a token created without one.
const (
	maxTokenName     = 100
	defaultTokenName = "API token"
)

type registerRequest struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

// sessionResponse answers register and login: the signed-in user and the CSRF token that
// state-changing calls with the session cookie must send as X-CSRF-Token.
type sessionResponse struct {
	Username  string `json:"username"`
	CSRFToken string `json:"csrf_token"`
}

// handleAPIRegister creates an account (the first one is an admin), signs it in and
// answers 201. It honours Settings.RegistrationOpen, and every attempt counts against the
// client address's RegisterThrottle.
func (s *Server) handleAPIRegister(w http.ResponseWriter, r *http.Request) {
	var req registerRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	ipKey := throttleKey("ip", s.ClientIP(r))
	if ok, retry := s.RegisterThrottle.Allow(ipKey); !ok {
		s.writeThrottled(w, r, retry, "Too many sign-ups from your address.")
		return
	}
	s.RegisterThrottle.Fail(ipKey)

	settings, err := s.Settings.Settings(r.Context())
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	if !settings.RegistrationOpen {
		s.writeAPIError(w, r, onair.Errorf(onair.EFORBIDDEN, "Registration is closed on this site."))
		return
	}
	u := &onair.User{
		Username: strings.ToLower(strings.TrimSpace(req.Username)),
		Email:    strings.TrimSpace(req.Email),
	}
	// The first stream key is shown on the dashboard, not here.
	if _, err := s.Users.CreateUser(r.Context(), u, req.Password); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	s.startSession(w, r, u, http.StatusCreated)
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// handleAPILogin checks a username and password and starts a session. Failures count
// against the account (LoginThrottle) and the client address (LoginIPThrottle); an
// unknown user and a wrong password get the same answer.
func (s *Server) handleAPILogin(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	name := strings.ToLower(strings.TrimSpace(req.Username))
	if name == "" || req.Password == "" {
		s.writeAPIError(w, r, onair.Errorf(onair.EINVALID, "Enter your username and password."))
		return
	}
	userKey, ipKey := throttleKey("user", name), throttleKey("ip", s.ClientIP(r))
	if ok, retry := s.LoginIPThrottle.Allow(ipKey); !ok {
		s.writeThrottled(w, r, retry, "Too many failed logins.")
		return
	}
	if ok, retry := s.LoginThrottle.Allow(userKey); !ok {
		s.writeThrottled(w, r, retry, "Too many failed logins.")
		return
	}
	u, err := s.Accounts.Authenticate(r.Context(), name, req.Password)
	if onair.ErrorCode(err) == onair.EUNAUTHORIZED {
		s.LoginThrottle.Fail(userKey)
		s.LoginIPThrottle.Fail(ipKey)
		s.writeAPIError(w, r, onair.Errorf(onair.EUNAUTHORIZED, msgBadLogin))
		return
	} else if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	s.LoginThrottle.Reset(userKey)
	s.startSession(w, r, u, http.StatusOK)
}

// startSession replaces the request's session (if any; the authenticator deletes it)
// with a new one for u and answers with the session response.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u *onair.User, status int) {
	sess, err := s.Auth.StartSession(w, r, u.ID)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeJSON(w, status, sessionResponse{Username: u.Username, CSRFToken: sess.CSRFToken})
}

// handleAPILogout ends the session and clears its cookie. Without a session it does
// nothing.
func (s *Server) handleAPILogout(w http.ResponseWriter, r *http.Request) {
	if err := s.Auth.EndSession(w, r); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeNoContent(w)
}

type tokenRequest struct {
	Name string `json:"name"`
}

type tokenResponse struct {
	Token string `json:"token"`
	Name  string `json:"name"`
}

// handleAPICreateToken returns a new personal API token for the signed-in user.
func (s *Server) handleAPICreateToken(w http.ResponseWriter, r *http.Request) {
	u := s.requireUser(w, r)
	if u == nil {
		return
	}
	var req tokenRequest
	if err := decodeJSON(w, r, &req, true); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" {
		req.Name = defaultTokenName
	}
	if utf8.RuneCountInString(req.Name) > maxTokenName {
		s.writeAPIError(w, r, onair.Errorf(onair.EINVALID, "Token name must be at most %d characters.", maxTokenName))
		return
	}
	tok, err := s.Sessions.CreateAPIToken(r.Context(), u.ID, req.Name)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, tokenResponse{Token: tok.Reveal(), Name: req.Name})
}

// handleAPIMe returns the signed-in user.
func (s *Server) handleAPIMe(w http.ResponseWriter, r *http.Request) {
	u := s.requireUser(w, r)
	if u == nil {
		return
	}
	writeJSON(w, http.StatusOK, newUserJSON(u))
}

type streamKeyResponse struct {
	StreamKey string `json:"stream_key"`
}

// handleAPIStreamKey returns the signed-in user's stream key. There is no way to read
// another user's key.
func (s *Server) handleAPIStreamKey(w http.ResponseWriter, r *http.Request) {
	u := s.requireUser(w, r)
	if u == nil {
		return
	}
	key, err := s.Keys.StreamKey(r.Context(), u.ID)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, streamKeyResponse{StreamKey: key.Reveal()})
}

// handleAPIResetStreamKey rotates the signed-in user's stream key: the old key stops
// working at once, and a live stream on it is cut.
func (s *Server) handleAPIResetStreamKey(w http.ResponseWriter, r *http.Request) {
	u := s.requireUser(w, r)
	if u == nil {
		return
	}
	if err := decodeJSON(w, r, &struct{}{}, true); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	key, err := s.Keys.ResetStreamKey(r.Context(), u.ID)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	s.endStream(u.Username)
	writeJSON(w, http.StatusOK, streamKeyResponse{StreamKey: key.Reveal()})
}

type channelUpdateRequest struct {
	Title       *string   `json:"title"`
	Description *string   `json:"description"`
	Tags        *[]string `json:"tags"`
	Recording   *bool     `json:"recording"`
}

// handleAPIUpdateChannel changes the signed-in user's channel settings; absent (or null)
// fields are left alone.
func (s *Server) handleAPIUpdateChannel(w http.ResponseWriter, r *http.Request) {
	u := s.requireUser(w, r)
	if u == nil {
		return
	}
	var req channelUpdateRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	ci, err := s.Platform.UpdateChannel(r.Context(), u, onair.ChannelUpdate{
		Title: req.Title, Description: req.Description, Tags: req.Tags, Recording: req.Recording,
	})
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.channelJSON(ci))
}

type passwordRequest struct {
	OldPassword string `json:"old_password"`
	NewPassword string `json:"new_password"`
}

// handleAPIChangePassword sets a new password after checking the old one. Every other
// session of the user ends; the one making the call stays signed in. The user's personal
// API tokens are revoked too (when Sessions can, see tokenRevoker): a password change is
// what someone does who fears their account was taken, and a token the intruder made
// must not outlive it. Wrong old passwords count against the account's LoginThrottle.
func (s *Server) handleAPIChangePassword(w http.ResponseWriter, r *http.Request) {
	u := s.requireUser(w, r)
	if u == nil {
		return
	}
	var req passwordRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	if req.OldPassword == "" || req.NewPassword == "" {
		s.writeAPIError(w, r, onair.Errorf(onair.EINVALID, "Enter your current and your new password."))
		return
	}
	userKey := throttleKey("user", u.Username)
	if ok, retry := s.LoginThrottle.Allow(userKey); !ok {
		s.writeThrottled(w, r, retry, "Too many wrong passwords.")
		return
	}
	// Checked here, so that a wrong password counts against the throttle whatever code
	// the service uses for it.
	if !s.checkPassword(w, r, u, req.OldPassword, userKey, "Your current password is not right.") {
		return
	}
	var keep onair.Secret
	if sess := auth.SessionFromContext(r.Context()); sess != nil {
		keep = sess.Token
	}
	if err := s.Accounts.ChangePassword(r.Context(), u.ID, req.OldPassword, req.NewPassword, keep); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	if tr, ok := s.Sessions.(tokenRevoker); ok {
		if err := tr.RevokeAPITokens(r.Context(), u.ID); err != nil {
			s.writeAPIError(w, r, err)
			return
		}
	}
	writeNoContent(w)
}

// tokenRevoker is the part of a session service that deletes every API token of a user
// (*store.SessionService).
type tokenRevoker interface {
	RevokeAPITokens(ctx context.Context, userID int64) error
}

type deleteAccountRequest struct {
	Password string `json:"password"`
}

// handleAPIDeleteMe deletes the signed-in user's account and everything that is theirs
// after checking the password, cuts their live stream and ends the session.
func (s *Server) handleAPIDeleteMe(w http.ResponseWriter, r *http.Request) {
	u := s.requireUser(w, r)
	if u == nil {
		return
	}
	var req deleteAccountRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	if req.Password == "" {
		s.writeAPIError(w, r, onair.Errorf(onair.EINVALID, "Enter your password to delete your account."))
		return
	}
	userKey := throttleKey("user", u.Username)
	if ok, retry := s.LoginThrottle.Allow(userKey); !ok {
		s.writeThrottled(w, r, retry, "Too many wrong passwords.")
		return
	}
	if !s.checkPassword(w, r, u, req.Password, userKey, "Your password is not right.") {
		return
	}
	if err := s.Accounts.DeleteUser(r.Context(), u, u.ID); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	s.endStream(u.Username)
	// The store deleted the session with the user; this clears the cookie.
	if err := s.Auth.EndSession(w, r); err != nil {
		s.Logger.Warn("end session of deleted user failed", "user_id", u.ID, "err", err)
	}
	writeNoContent(w)
}

// checkPassword checks the signed-in user's password for a sensitive change. A wrong one
// counts against the account's LoginThrottle and is answered 403 with wrongMsg (not 401:
// the caller is still signed in); ok is false when it answered.
func (s *Server) checkPassword(w http.ResponseWriter, r *http.Request, u *onair.User, password, userKey, wrongMsg string) bool {
	_, err := s.Accounts.Authenticate(r.Context(), u.Username, password)
	if onair.ErrorCode(err) == onair.EUNAUTHORIZED {
		s.LoginThrottle.Fail(userKey)
		s.writeAPIError(w, r, onair.Errorf(onair.EFORBIDDEN, "%s", wrongMsg))
		return false
	} else if err != nil {
		s.writeAPIError(w, r, err)
		return false
	}
	s.LoginThrottle.Reset(userKey)
	return true
}

// endStream cuts a channel's live stream, if any, and reports whether one was live.
func (s *Server) endStream(channel string) bool {
	if s.EndStream == nil {
		return false
	}
	return s.EndStream(channel)
}

// throttleKey builds a throttle key, bounded in length.
func throttleKey(kind, v string) string {
	return kind + ":" + clip(v, 64)
}

// writeThrottled answers 429 with a Retry-After header.
func (s *Server) writeThrottled(w http.ResponseWriter, r *http.Request, retry time.Duration, msg string) {
	secs := max(int(math.Ceil(retry.Seconds())), 1)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	s.writeAPIError(w, r, onair.Errorf(onair.ETOOMANY, "%s Try again in %s.", msg, waitWords(secs)))
}

// waitWords says how long to wait, rounded up to a minute past one minute.
func waitWords(secs int) string {
	if secs < 60 {
		return plural(secs, "second")
	}
	return plural((secs+59)/60, "minute")
}
