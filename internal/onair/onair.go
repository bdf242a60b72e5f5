package onair

import (
	"context"
	"time"
)

// User is an account.
type User struct {
	ID       int64
	Username string
	Email    string
	IsAdmin  bool
	// Banned users cannot log in, publish or chat.
	Banned    bool
	CreatedAt time.Time
}

// Channel is a user's channel. Its name is the owner's username.
type Channel struct {
	ID          int64
	UserID      int64
	Name        string
	Title       string
	Description string
	// LastLiveAt is when the channel last went live (nil when never).
	LastLiveAt *time.Time
	CreatedAt  time.Time
}

// StreamKey is a secret that lets its owner publish to a channel. It prints and logs as
// REDACTED; call Reveal to get the key itself, only to show it to its owner or the CLI.
type StreamKey string

// String implements fmt.Stringer without revealing the key.
func (StreamKey) String() string { return "REDACTED" }

// GoString implements fmt.GoStringer without revealing the key.
func (StreamKey) GoString() string { return "REDACTED" }

// LogValue implements slog.LogValuer without revealing the key.
func (StreamKey) LogValue() any { return "REDACTED" }

// Reveal returns the key itself.
func (k StreamKey) Reveal() string { return string(k) }

// reservedNames collide with routes or would confuse viewers.
var reservedNames = map[string]bool{
	"api": true, "hls": true, "dash": true, "vod": true, "stat": true, "metrics": true,
	"login": true, "logout": true, "register": true, "signup": true, "static": true,
	"healthz": true, "admin": true, "embed": true, "live": true, "settings": true,
	"dashboard": true, "search": true, "tags": true, "tag": true, "root": true,
	"onair": true, "system": true, "null": true, "undefined": true, "www": true,
}

// ValidateUsername checks a username against the rules in DESIGN.md: lowercase
// [a-z0-9_]{3,30}, and not a reserved name.
func ValidateUsername(name string) error {
	if !usernameChars(name) {
		return Errorf(EINVALID, "Username must be 3 to 30 characters of a-z, 0-9 and _.")
	}
	if reservedNames[name] {
		return Errorf(EINVALID, "Username %q is reserved.", name)
	}
	return nil
}

// usernameChars reports whether name matches [a-z0-9_]{3,30}. A loop, not a regexp:
// every HLS, DASH and channel request checks the name in its path.
func usernameChars(name string) bool {
	if len(name) < 3 || len(name) > 30 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// UserService manages accounts.
type UserService interface {
	// CreateUser creates u (setting its ID and CreatedAt), its channel and its first
	// stream key, which it returns. It fails with ECONFLICT when the username is taken.
	CreateUser(ctx context.Context, u *User, password string) (StreamKey, error)

	// FindUserByUsername returns the user, or ENOTFOUND.
	FindUserByUsername(ctx context.Context, username string) (*User, error)
}

// StreamKeyService manages stream keys.
type StreamKeyService interface {
	// StreamKey returns the user's current stream key.
	StreamKey(ctx context.Context, userID int64) (StreamKey, error)

	// ResetStreamKey replaces the user's stream key with a new one and returns it.
	// The old key stops working at once.
	ResetStreamKey(ctx context.Context, userID int64) (StreamKey, error)

	// ChannelByStreamKey returns the channel the key publishes to, or ENOTFOUND.
	// The comparison does not leak the key through timing.
	ChannelByStreamKey(ctx context.Context, key StreamKey) (*Channel, error)
}

// ChannelService manages channels.
type ChannelService interface {
	// FindChannelByName returns the channel, or ENOTFOUND.
	FindChannelByName(ctx context.Context, name string) (*Channel, error)

	// MarkChannelLive records that the channel went live at t.
	MarkChannelLive(ctx context.Context, name string, t time.Time) error
}

// LiveStream describes a live stream for pages and the JSON API.
type LiveStream struct {
	Channel    string    `json:"channel"`
	StartedAt  time.Time `json:"started_at"`
	Publishing bool      `json:"publishing"`
	VideoCodec string    `json:"video_codec,omitempty"`
	AudioCodec string    `json:"audio_codec,omitempty"`
	Width      int       `json:"width,omitempty"`
	Height     int       `json:"height,omitempty"`
	FPS        float64   `json:"fps"`
	// BitrateKbps is the total measured bitrate in kbit/s.
	BitrateKbps float64 `json:"bitrate_kbps"`
	VideoKbps   float64 `json:"video_kbps"`
	AudioKbps   float64 `json:"audio_kbps"`
	// KeyframeInterval is in seconds.
	KeyframeInterval float64 `json:"keyframe_interval"`
	SampleRate       int     `json:"audio_sample_rate,omitempty"`
	Channels         int     `json:"audio_channels,omitempty"`
	Viewers          int     `json:"viewers"`
}

// LiveDirectory lists what is live now.
type LiveDirectory interface {
	// LiveStreams returns the live streams.
	LiveStreams() []LiveStream

	// LiveStream returns the named live stream, and false when it is not live.
	LiveStream(name string) (LiveStream, bool)
}
