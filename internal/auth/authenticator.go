package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/onair/onair/internal/onair"
)

// DefaultCookieName is the name of the session cookie.
const DefaultCookieName = "onair_session"

// CSRFHeader is the request header that carries the CSRF token; CSRFField is the form
// field that does.
const (
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf_token"
)

// maxTokenLen bounds a cookie or bearer token: longer ones are refused without asking
// the store.
const maxTokenLen = 512

// Messages of the errors Middleware answers with.
const (
	msgBadCSRF     = "Missing or bad CSRF token."
	msgCrossOrigin = "Cross-origin request refused."
	msgBadToken    = "Invalid API token."
	msgInternal    = "Internal error."
)

// Authenticator resolves the session cookie or an "Authorization: Bearer TOKEN" header
// into the request context, and enforces CSRF on cookie-authenticated state-changing
// requests (see the package documentation). Set its fields, then use it; it needs no
// Start. Its methods are safe for concurrent use.
type Authenticator struct {
	// Sessions finds and manages sessions and API tokens. Required.
	Sessions onair.SessionService

	// Accounts, when set, is asked for the user before StartSession creates a session, so
	// that a banned or deleted user never gets one. Optional.
	Accounts onair.AccountService

	// CookieName is the session cookie's name. Default: DefaultCookieName.
	CookieName string

	// Secure reports whether the session cookie gets the Secure flag. Default: whether
	// the request came over TLS (r.TLS != nil). Behind a TLS-terminating proxy, set it
	// to return true.
	Secure func(r *http.Request) bool

	// Logger receives Debug messages about each authentication (never a token).
	// Default: discard.
	Logger *slog.Logger

	// Now returns the current time. Default: time.Now.
	Now func() time.Time
}

// Middleware authenticates each request and passes it on with the user (and session)
// in its context, or answers it with a JSON error: 401 for a bad bearer token, 403 for a
// failed CSRF or origin check, 500 when the store fails.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token, ok := bearerToken(r); ok {
			a.serveBearer(w, r, token, next)
			return
		}

		var sess *onair.Session
		if c, err := r.Cookie(a.cookieName()); err == nil && c.Value != "" {
			sess, err = a.findSession(r.Context(), c.Value)
			if err != nil {
				a.internalError(w, r, "find session", err)
				return
			}
			if sess == nil {
				http.SetCookie(w, a.clearedCookie(r))
			}
		}

		if !safeMethod(r.Method) {
			if reason := checkOrigin(r); reason != "" {
				a.logger().DebugContext(r.Context(), "cross-origin request refused",
					"reason", reason, "user_id", userID(sess))
				writeError(w, http.StatusForbidden, onair.EFORBIDDEN, msgCrossOrigin)
				return
			}
			if sess != nil && !a.validCSRF(r, sess) {
				a.logger().DebugContext(r.Context(), "csrf token refused", "user_id", userID(sess))
				writeError(w, http.StatusForbidden, onair.EFORBIDDEN, msgBadCSRF)
				return
			}
		}

		if sess == nil {
			next.ServeHTTP(w, r)
			return
		}
		a.logger().DebugContext(r.Context(), "request authenticated",
			"auth", "session", "user_id", sess.User.ID)
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), sess.User, sess)))
	})
}

// serveBearer handles a request that carries an "Authorization: Bearer" header.
func (a *Authenticator) serveBearer(w http.ResponseWriter, r *http.Request, token string, next http.Handler) {
	ctx := r.Context()
	var user *onair.User
	var err error
	if token == "" || len(token) > maxTokenLen {
		err = onair.Errorf(onair.EUNAUTHORIZED, msgBadToken)
	} else {
		user, err = a.Sessions.FindUserByAPIToken(ctx, onair.Secret(token))
		if err == nil && user == nil {
			err = errors.New("api token without user")
		}
	}
	switch code := onair.ErrorCode(err); {
	case code == onair.EUNAUTHORIZED || code == onair.ENOTFOUND:
		a.logger().DebugContext(ctx, "api token refused")
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, onair.EUNAUTHORIZED, msgBadToken)
	case code == onair.EFORBIDDEN:
		// The store refuses a banned user's token: anonymous, like a banned user.
		a.logger().DebugContext(ctx, "banned user treated as anonymous", "auth", "bearer")
		next.ServeHTTP(w, r)
	case err != nil:
		a.internalError(w, r, "find api token", err)
	case user.Banned:
		a.logger().DebugContext(ctx, "banned user treated as anonymous", "auth", "bearer", "user_id", user.ID)
		next.ServeHTTP(w, r)
	default:
		a.logger().DebugContext(ctx, "request authenticated", "auth", "bearer", "user_id", user.ID)
		next.ServeHTTP(w, r.WithContext(NewContext(ctx, user, nil)))
	}
}

// findSession returns the live session of a cookie token, nil when the token is unknown
// or expired or its user is banned, or an error when the store fails.
func (a *Authenticator) findSession(ctx context.Context, token string) (*onair.Session, error) {
	if len(token) > maxTokenLen {
		a.logger().DebugContext(ctx, "session refused", "reason", "token too long")
		return nil, nil
	}
	sess, err := a.Sessions.FindSession(ctx, onair.Secret(token))
	switch code := onair.ErrorCode(err); {
	case code == onair.EUNAUTHORIZED || code == onair.ENOTFOUND:
		a.logger().DebugContext(ctx, "session refused", "reason", "unknown or expired")
		return nil, nil
	case code == onair.EFORBIDDEN:
		a.logger().DebugContext(ctx, "session refused", "reason", "forbidden")
		return nil, nil
	case err != nil:
		return nil, err
	case sess == nil || sess.User == nil:
		return nil, errors.New("session without user")
	case !sess.ExpiresAt.IsZero() && !a.now().Before(sess.ExpiresAt):
		a.logger().DebugContext(ctx, "session refused", "reason", "expired", "user_id", sess.User.ID)
		return nil, nil
	case sess.User.Banned:
		a.logger().DebugContext(ctx, "banned user treated as anonymous", "auth", "session", "user_id", sess.User.ID)
		return nil, nil
	}
	return sess, nil
}

// validCSRF reports whether r carries the CSRF token of sess.
func (a *Authenticator) validCSRF(r *http.Request, sess *onair.Session) bool {
	if sess.CSRFToken == "" {
		return false
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		got = formCSRFToken(r)
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRFToken)) == 1
}

// StartSession creates a session for the user (after a successful login or sign-up) and
// sets its cookie. A session the browser already had is deleted first. The returned
// session holds the CSRF token the client must send back.
func (a *Authenticator) StartSession(w http.ResponseWriter, r *http.Request, userID int64) (*onair.Session, error) {
	ctx := r.Context()
	if a.Accounts != nil {
		u, err := a.Accounts.FindUserByID(ctx, userID)
		if err != nil {
			return nil, fmt.Errorf("start session: %w", err)
		}
		if u.Banned {
			return nil, onair.Errorf(onair.EFORBIDDEN, "This account is banned.")
		}
	}
	if old := a.requestToken(r); old != "" {
		if err := a.Sessions.DeleteSession(ctx, onair.Secret(old)); err != nil {
			return nil, fmt.Errorf("start session: delete previous session: %w", err)
		}
	}
	sess, err := a.Sessions.CreateSession(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("start session: %w", err)
	}
	if !validCookieValue(sess.Token.Reveal()) {
		// http.SetCookie would silently drop the bad bytes and hand out a broken cookie.
		return nil, errors.New("start session: session token is not a valid cookie value")
	}
	http.SetCookie(w, a.sessionCookie(r, sess))
	a.logger().DebugContext(ctx, "session started", "user_id", userID)
	return sess, nil
}

// EndSession deletes the request's session (logout) and clears the cookie. The cookie is
// cleared even when deleting fails.
func (a *Authenticator) EndSession(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, a.clearedCookie(r))
	token := a.requestToken(r)
	if token == "" {
		return nil
	}
	if err := a.Sessions.DeleteSession(r.Context(), onair.Secret(token)); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	a.logger().DebugContext(r.Context(), "session ended", "user_id", userID(SessionFromContext(r.Context())))
	return nil
}

// requestToken returns the session token of r: that of the session Middleware found,
// else the cookie's value.
func (a *Authenticator) requestToken(r *http.Request) string {
	if s := SessionFromContext(r.Context()); s != nil {
		return s.Token.Reveal()
	}
	if c, err := r.Cookie(a.cookieName()); err == nil && len(c.Value) <= maxTokenLen {
		return c.Value
	}
	return ""
}

// sessionCookie returns the cookie that carries sess.
func (a *Authenticator) sessionCookie(r *http.Request, sess *onair.Session) *http.Cookie {
	c := a.baseCookie(r)
	c.Value = sess.Token.Reveal()
	if !sess.ExpiresAt.IsZero() {
		life := sess.ExpiresAt.Sub(a.now())
		c.MaxAge = max(1, int((life+time.Second-1)/time.Second))
	}
	return c
}

// clearedCookie returns a cookie that makes the browser drop the session cookie.
func (a *Authenticator) clearedCookie(r *http.Request) *http.Cookie {
	c := a.baseCookie(r)
	c.MaxAge = -1
	return c
}

func (a *Authenticator) baseCookie(r *http.Request) *http.Cookie {
	return &http.Cookie{
		Name:     a.cookieName(),
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   a.secure(r),
	}
}

// internalError answers 500 and logs err, unless the client went away.
func (a *Authenticator) internalError(w http.ResponseWriter, r *http.Request, op string, err error) {
	if r.Context().Err() == nil {
		a.logger().ErrorContext(r.Context(), "authentication failed", "op", op, "err", err)
	}
	writeError(w, http.StatusInternalServerError, onair.EINTERNAL, msgInternal)
}

func (a *Authenticator) cookieName() string {
	if a.CookieName != "" {
		return a.CookieName
	}
	return DefaultCookieName
}

func (a *Authenticator) secure(r *http.Request) bool {
	if a.Secure != nil {
		return a.Secure(r)
	}
	return r.TLS != nil
}

func (a *Authenticator) logger() *slog.Logger {
	if a.Logger != nil {
		return a.Logger
	}
	return discardLogger
}

func (a *Authenticator) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

var discardLogger = slog.New(slog.DiscardHandler)

// bearerToken returns the token of an "Authorization: Bearer TOKEN" header, and whether
// there is such a header. Other schemes (e.g. Basic from a proxy) are ignored.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// safeMethod reports whether method is one that must not change state.
func safeMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// validCookieValue reports whether v can be sent as a cookie value unchanged (RFC 6265
// cookie-octet).
func validCookieValue(v string) bool {
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		b := v[i]
		if b < 0x21 || b > 0x7e || b == '"' || b == ',' || b == ';' || b == '\\' {
			return false
		}
	}
	return true
}

func userID(s *onair.Session) int64 {
	if s == nil || s.User == nil {
		return 0
	}
	return s.User.ID
}
