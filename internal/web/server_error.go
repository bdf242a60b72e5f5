package web

import (
	"log/slog"
	"net/http"

	"github.com/onair/onair/internal/onair"
)

// codeTooLarge is web's own error code for a request body over the limit (413).
const codeTooLarge = "too_large"

// errorStatuses maps onair error codes to HTTP statuses. Any other code is a 500.
var errorStatuses = map[string]int{
	codeTooLarge:        http.StatusRequestEntityTooLarge,
	onair.EINVALID:      http.StatusBadRequest,
	onair.EUNAUTHORIZED: http.StatusUnauthorized,
	onair.EFORBIDDEN:    http.StatusForbidden,
	onair.ENOTFOUND:     http.StatusNotFound,
	onair.ECONFLICT:     http.StatusConflict,
	onair.ETOOMANY:      http.StatusTooManyRequests,
}

// resolveError is the one place where an error becomes an HTTP status, a code and a
// user-safe message. Errors that map to 500 are logged here and their text is never shown.
func (s *Server) resolveError(r *http.Request, err error) (status int, code, message string) {
	code = onair.ErrorCode(err)
	status, ok := errorStatuses[code]
	if !ok {
		s.Logger.Error("request failed",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Any("err", err))
		return http.StatusInternalServerError, onair.EINTERNAL, "Internal error."
	}
	return status, code, onair.ErrorMessage(err)
}

// apiError is the JSON body of an API error.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeAPIError writes err as a JSON error.
func (s *Server) writeAPIError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, message := s.resolveError(r, err)
	writeJSON(w, status, apiError{Error: apiErrorBody{Code: code, Message: message}})
}

// writeErrorPage renders err as an HTML error page.
func (s *Server) writeErrorPage(w http.ResponseWriter, r *http.Request, err error) {
	status, _, message := s.resolveError(r, err)
	s.render(w, r, status, "error", errorData{
		layoutData: s.layout(r, http.StatusText(status)),
		Status:     status,
		Heading:    errorHeading(status),
		Message:    message,
	})
}

func errorHeading(status int) string {
	switch status {
	case http.StatusNotFound:
		return "Not found"
	case http.StatusInternalServerError:
		return "Something went wrong"
	}
	return http.StatusText(status)
}

// errSignIn is the error of a call that needs a signed-in user.
func errSignIn() error {
	return onair.Errorf(onair.EUNAUTHORIZED, "Sign in first.")
}

// requireUser returns the signed-in user, or writes a 401 and returns nil.
func (s *Server) requireUser(w http.ResponseWriter, r *http.Request) *onair.User {
	u := currentUser(r)
	if u == nil {
		s.writeAPIError(w, r, errSignIn())
	}
	return u
}

// requireAdmin returns the signed-in admin, or writes a 401 or 403 and returns nil.
func (s *Server) requireAdmin(w http.ResponseWriter, r *http.Request) *onair.User {
	u := s.requireUser(w, r)
	if u != nil && !u.IsAdmin {
		s.writeAPIError(w, r, onair.Errorf(onair.EFORBIDDEN, "Only site admins may do this."))
		return nil
	}
	return u
}
