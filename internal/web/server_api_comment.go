package web

import (
	"net/http"
	"strconv"

	"github.com/onair/onair/internal/onair"
)

// Limits of comment and notification lists.
const (
	maxComments      = 200
	maxNotifications = 50
)

type commentRequest struct {
	Text string `json:"text"`
}

// handleAPIComments writes a video's comments, oldest first (?offset=, ?limit= up to 200).
func (s *Server) handleAPIComments(w http.ResponseWriter, r *http.Request) {
	id, err := parseID(r.PathValue("id"), "video")
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	offset, limit, err := pageParams(r, maxComments)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	list, err := s.Comments.Comments(r.Context(), id, offset, limit)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	if list == nil {
		list = []*onair.Comment{}
	}
	writeJSON(w, http.StatusOK, list)
}

// handleAPICreateComment adds a comment to a video as the signed-in user.
func (s *Server) handleAPICreateComment(w http.ResponseWriter, r *http.Request) {
	u := s.requireUser(w, r)
	if u == nil {
		return
	}
	id, err := parseID(r.PathValue("id"), "video")
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	var req commentRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	c, err := s.Comments.CreateComment(r.Context(), u, id, req.Text)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

// handleAPIUpdateComment edits a comment; only its author may.
func (s *Server) handleAPIUpdateComment(w http.ResponseWriter, r *http.Request) {
	u := s.requireUser(w, r)
	if u == nil {
		return
	}
	id, err := parseID(r.PathValue("id"), "comment")
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	var req commentRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	c, err := s.Comments.UpdateComment(r.Context(), u, id, req.Text)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// handleAPIDeleteComment deletes a comment; its author, the channel owner and admins may.
func (s *Server) handleAPIDeleteComment(w http.ResponseWriter, r *http.Request) {
	u := s.requireUser(w, r)
	if u == nil {
		return
	}
	id, err := parseID(r.PathValue("id"), "comment")
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	if err := s.Comments.DeleteComment(r.Context(), u, id); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeNoContent(w)
}

type notificationsResponse struct {
	Unread        int                   `json:"unread"`
	Notifications []*onair.Notification `json:"notifications"`
}

// handleAPINotifications writes the signed-in user's newest notifications and how many
// are unread.
func (s *Server) handleAPINotifications(w http.ResponseWriter, r *http.Request) {
	u := s.requireUser(w, r)
	if u == nil {
		return
	}
	resp, err := s.notifications(r, u, maxNotifications)
	if err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) notifications(r *http.Request, u *onair.User, limit int) (notificationsResponse, error) {
	list, err := s.Notifications.Notifications(r.Context(), u.ID, limit)
	if err != nil {
		return notificationsResponse{}, err
	}
	unread, err := s.Notifications.UnreadCount(r.Context(), u.ID)
	if err != nil {
		return notificationsResponse{}, err
	}
	if list == nil {
		list = []*onair.Notification{}
	}
	return notificationsResponse{Unread: unread, Notifications: list}, nil
}

// handleAPIMarkNotificationsRead marks all the signed-in user's notifications read.
func (s *Server) handleAPIMarkNotificationsRead(w http.ResponseWriter, r *http.Request) {
	u := s.requireUser(w, r)
	if u == nil {
		return
	}
	if err := decodeJSON(w, r, &struct{}{}, true); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	if err := s.Notifications.MarkNotificationsRead(r.Context(), u.ID); err != nil {
		s.writeAPIError(w, r, err)
		return
	}
	writeNoContent(w)
}

// pageParams reads ?offset= (default 0) and ?limit= (default and maximum max).
func pageParams(r *http.Request, maxLimit int) (offset, limit int, err error) {
	q := r.URL.Query()
	offset, limit = 0, maxLimit
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, onair.Errorf(onair.EINVALID, "offset must be a number of at least 0.")
		}
	}
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxLimit {
			return 0, 0, onair.Errorf(onair.EINVALID, "limit must be a number from 1 to %d.", maxLimit)
		}
	}
	return offset, limit, nil
}
