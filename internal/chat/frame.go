package chat

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/onair/onair/internal/onair"
)

// maxTimeoutSeconds bounds a time-out (14 days); longer is a ban.
const maxTimeoutSeconds = 14 * 24 * 3600

// inFrame is a frame from a client.
type inFrame struct {
	Type    string `json:"type"`
	Text    string `json:"text,omitempty"`
	ID      int64  `json:"id,omitempty"`
	User    string `json:"user,omitempty"`
	Seconds int64  `json:"seconds,omitempty"`
}

// decodeFrame parses and checks a client frame. Its errors are EINVALID, with messages
// for the client.
func decodeFrame(b []byte) (inFrame, error) {
	var f inFrame
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&f); err != nil {
		return inFrame{}, onair.Errorf(onair.EINVALID, "Frames must be JSON objects.")
	}
	if dec.More() {
		return inFrame{}, onair.Errorf(onair.EINVALID, "Frames must be JSON objects.")
	}
	switch f.Type {
	case "message":
		if strings.TrimSpace(f.Text) == "" {
			return inFrame{}, onair.Errorf(onair.EINVALID, "Message is empty.")
		}
	case "delete":
		if f.ID <= 0 {
			return inFrame{}, onair.Errorf(onair.EINVALID, "Which message? Give its id.")
		}
	case "timeout":
		if f.Seconds <= 0 || f.Seconds > maxTimeoutSeconds {
			return inFrame{}, onair.Errorf(onair.EINVALID, "A time-out lasts 1 second to 14 days.")
		}
		fallthrough
	case "ban", "unban":
		if !isUsernameShape(f.User) {
			return inFrame{}, onair.Errorf(onair.EINVALID, "Which user? Give their username.")
		}
	default:
		return inFrame{}, onair.Errorf(onair.EINVALID, "Unknown frame type.")
	}
	return f, nil
}

// isUsernameShape reports whether s looks like a username ([a-z0-9_]{3,30}); the
// service says whether the user exists.
func isUsernameShape(s string) bool {
	if len(s) < 3 || len(s) > 30 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// messageFrame is a chat message as sent to clients and returned by the history endpoint.
type messageFrame struct {
	Type string    `json:"type"`
	ID   int64     `json:"id"`
	User string    `json:"user"`
	Text string    `json:"text"`
	Time time.Time `json:"time"`
}

func newMessageFrame(m *onair.ChatMessage) messageFrame {
	return messageFrame{Type: "message", ID: m.ID, User: m.User, Text: m.Text, Time: m.CreatedAt.UTC()}
}

type deleteFrame struct {
	Type string `json:"type"`
	ID   int64  `json:"id"`
}

// textFrame is an "error" or "notice" frame.
type textFrame struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// banEvent is the Data of a chat.ban bus event; Until is nil for a ban.
type banEvent struct {
	Type  string     `json:"type"`
	User  string     `json:"user"`
	Until *time.Time `json:"until,omitempty"`
}

// internalErrorFrame stands in for a frame that cannot be encoded.
var internalErrorFrame = []byte(`{"type":"error","message":"Internal error."}`)

// encodeFrame encodes a frame. Frames are plain structs; only a time outside years
// 0-9999 (from a broken store) can fail, and that becomes an error frame.
func encodeFrame(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return internalErrorFrame
	}
	return b
}
