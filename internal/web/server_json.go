package web

import (
	"cmp"
	"encoding/json"
	"errors"

	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/onair/onair/internal/onair"
)

// decodeJSON reads the request body, at most maxBodyBytes, into v. The body must be a
// single JSON value with only the fields v knows; a bad body is an EINVALID error whose
// message says what is wrong (a too large one is codeTooLarge, a 413). An empty body decodes to nothing when allowEmpty is set.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, allowEmpty bool) error {
	body := http.MaxBytesReader(w, r.Body, maxBodyBytes)
	data, err := io.ReadAll(body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return onair.Errorf(codeTooLarge, "Request body is too large (the limit is %d KiB).", maxBodyBytes>>10)
	} else if err != nil {
		return onair.Errorf(onair.EINVALID, "Could not read the request body.")
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		if allowEmpty {
			return nil
		}
		return onair.Errorf(onair.EINVALID, "Request body must be a JSON object.")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return onair.Errorf(onair.EINVALID, "Request body must be JSON (Content-Type: application/json).")
		}
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return onair.Errorf(onair.EINVALID, "Request body must be a single JSON object.")
	}
	return nil
}

// jsonError turns a decoding error into a message for the client.
func jsonError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return onair.Errorf(onair.EINVALID, "Request body is not valid JSON.")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return onair.Errorf(onair.EINVALID, "Request body must be a JSON object.")
		}
		return onair.Errorf(onair.EINVALID, "Field %q must be %s.", typ.Field, jsonKind(typ.Type.Kind().String()))
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return onair.Errorf(onair.EINVALID, "Unknown field %s.", clip(field, 64))
	}
	return onair.Errorf(onair.EINVALID, "Request body is not valid JSON.")
}

func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	if strings.HasPrefix(kind, "int") || strings.HasPrefix(kind, "uint") || strings.HasPrefix(kind, "float") {
		return "a number"
	}
	return "of another type"
}

// writeJSON writes v as JSON with the given status. Responses are not cached: the API
// describes what is live now, and some carry secrets for their owner.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only values of this package are written; they always marshal.
		status = http.StatusInternalServerError
		body = []byte(`{"error":{"code":"internal","message":"Internal error."}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// writeNoContent answers a call that has nothing to return.
func writeNoContent(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// userJSON is a user as the API shows it to itself and to admins.
type userJSON struct {
	ID        int64     `json:"id"`
	Username  string    `json:"username"`
	Email     string    `json:"email,omitempty"`
	IsAdmin   bool      `json:"is_admin"`
	Banned    bool      `json:"banned"`
	CreatedAt time.Time `json:"created_at"`
	Live      *bool     `json:"live,omitempty"` // admin list only
}

func newUserJSON(u *onair.User) userJSON {
	return userJSON{ID: u.ID, Username: u.Username, Email: u.Email, IsAdmin: u.IsAdmin, Banned: u.Banned,
		CreatedAt: u.CreatedAt.UTC()}
}

// channelJSON is a channel as the API shows it.
type channelJSON struct {
	Username    string            `json:"username"`
	Title       string            `json:"title"`
	Description string            `json:"description"`
	Tags        []string          `json:"tags"`
	Recording   bool              `json:"recording"`
	Live        bool              `json:"live"`
	Viewers     int               `json:"viewers"`
	Followers   int               `json:"followers"`
	Following   *bool             `json:"following,omitempty"` // signed-in callers only
	LastLiveAt  *time.Time        `json:"last_live_at"`
	Stream      *onair.LiveStream `json:"stream,omitempty"` // when live
}

func (s *Server) channelJSON(ci *onair.ChannelInfo) channelJSON {
	c := channelJSON{
		Username:    ci.Name,
		Title:       ci.Title,
		Description: ci.Description,
		Tags:        ci.Tags,
		Recording:   ci.Recording,
		Followers:   ci.Followers,
		LastLiveAt:  ci.LastLiveAt,
	}
	if c.Tags == nil {
		c.Tags = []string{}
	}
	if ls, ok := s.liveStream(ci.Name); ok {
		c.Live, c.Viewers, c.Stream = true, ls.Viewers, &ls
	}
	return c
}

// channelsJSON converts a list; live channels come first, by viewers, then by name.
func (s *Server) channelsJSON(list []*onair.ChannelInfo) []channelJSON {
	out := make([]channelJSON, 0, len(list))
	for _, ci := range list {
		out = append(out, s.channelJSON(ci))
	}
	slices.SortStableFunc(out, func(a, b channelJSON) int {
		if a.Live != b.Live {
			if a.Live {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.Viewers, a.Viewers), cmp.Compare(a.Username, b.Username))
	})
	return out
}

// sortByViewers orders live streams by viewers, most first, then by name.
func sortByViewers(streams []onair.LiveStream) {
	slices.SortFunc(streams, func(a, b onair.LiveStream) int {
		return cmp.Or(cmp.Compare(b.Viewers, a.Viewers), cmp.Compare(a.Channel, b.Channel))
	})
}

// parseID parses a positive decimal ID from a path segment.
func parseID(s, what string) (int64, error) {
	var id int64
	if s == "" || len(s) > 18 {
		return 0, onair.Errorf(onair.ENOTFOUND, "No such %s.", what)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, onair.Errorf(onair.ENOTFOUND, "No such %s.", what)
		}
		id = id*10 + int64(c-'0')
	}
	if id == 0 {
		return 0, onair.Errorf(onair.ENOTFOUND, "No such %s.", what)
	}
	return id, nil
}
