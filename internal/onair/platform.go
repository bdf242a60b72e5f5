package onair

import (
	"context"
	"time"
)

// This file holds the platform's domain: sessions, follows, tags, chat, comments,
// notifications and site settings. Services check authorisation themselves from the
// actor they are given, so every caller (web, API, CLI) gets the same rules.

// Session is a signed-in browser session. Token is the cookie value; CSRFToken must come
// back in the X-CSRF-Token header (or the csrf_token form field) on state-changing requests.
type Session struct {
	Token     Secret
	CSRFToken string
	User      *User
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Secret is a session or API token. Like StreamKey it logs and prints as REDACTED.
type Secret string

// String implements fmt.Stringer without revealing the secret.
func (Secret) String() string { return "REDACTED" }

// GoString implements fmt.GoStringer without revealing the secret.
func (Secret) GoString() string { return "REDACTED" }

// LogValue implements slog.LogValuer without revealing the secret.
func (Secret) LogValue() any { return "REDACTED" }

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

// UserUpdate changes a user's account (nil fields are left alone).
type UserUpdate struct {
	Email *string
}

// AccountService covers what a signed-in user and site admins do with accounts.
type AccountService interface {
	// FindUserByID returns the user, or ENOTFOUND.
	FindUserByID(ctx context.Context, id int64) (*User, error)

	// Authenticate checks a username and password. It fails with EUNAUTHORIZED and the
	// same message whether the user exists or not, in about the same time; banned users
	// get EFORBIDDEN.
	Authenticate(ctx context.Context, username, password string) (*User, error)

	// ChangePassword checks the old password and sets the new one. Every session of the
	// user except keepSession (which may be empty) is deleted.
	ChangePassword(ctx context.Context, userID int64, oldPassword, newPassword string, keepSession Secret) error

	// DeleteUser removes the user and everything that is theirs (channel, keys, follows,
	// chat messages, comments, sessions). actor must be the user or an admin.
	DeleteUser(ctx context.Context, actor *User, userID int64) error

	// ListUsers returns users for the admin page, newest first. actor must be an admin.
	ListUsers(ctx context.Context, actor *User, offset, limit int) ([]*User, error)

	// SetUserBanned bans or unbans a user site-wide (banned users cannot log in, publish or
	// chat; their sessions are deleted). actor must be an admin, and cannot ban themself.
	SetUserBanned(ctx context.Context, actor *User, userID int64, banned bool) error
}

// SessionService manages browser sessions and personal API tokens. Tokens are stored
// hashed: the database never holds a usable token.
type SessionService interface {
	// CreateSession starts a session for the user.
	CreateSession(ctx context.Context, userID int64) (*Session, error)

	// FindSession returns the session for the cookie token, or EUNAUTHORIZED when it is
	// unknown or expired.
	FindSession(ctx context.Context, token Secret) (*Session, error)

	// DeleteSession ends one session (logout). Unknown tokens are not an error.
	DeleteSession(ctx context.Context, token Secret) error

	// CreateAPIToken returns a new personal API token for the user.
	CreateAPIToken(ctx context.Context, userID int64, name string) (Secret, error)

	// FindUserByAPIToken returns the token's user, or EUNAUTHORIZED.
	FindUserByAPIToken(ctx context.Context, token Secret) (*User, error)
}

// ChannelUpdate changes a channel's settings (nil fields are left alone). Tags are
// normalised to lowercase, deduplicated, and limited to MaxTags of [a-z0-9-] up to 30 chars.
type ChannelUpdate struct {
	Title       *string
	Description *string
	Tags        *[]string
	// Recording turns recording of future broadcasts on or off.
	Recording *bool
	// Transcode turns the adaptive bit rate ladder of future broadcasts on or off (when
	// the site transcodes).
	Transcode *bool
}

// Limits on channel settings.
const (
	MaxTags           = 10
	MaxTitleLen       = 140
	MaxDescriptionLen = 5000
	MaxChatLen        = 500
	MaxCommentLen     = 5000
)

// ChannelInfo is a channel with the platform data pages show.
type ChannelInfo struct {
	Channel
	Tags      []string
	Recording bool
	Transcode bool
	Followers int
}

// TagCount is a tag and how many channels carry it.
type TagCount struct {
	Tag   string `json:"tag"`
	Count int    `json:"count"`
}

// PlatformChannelService covers channel settings, tags, search and follows.
type PlatformChannelService interface {
	// ChannelInfo returns the channel with its tags, recording switch and follower count.
	ChannelInfo(ctx context.Context, name string) (*ChannelInfo, error)

	// UpdateChannel changes the settings of the actor's own channel.
	UpdateChannel(ctx context.Context, actor *User, upd ChannelUpdate) (*ChannelInfo, error)

	// ChannelsByTag returns channels carrying the tag (normalised), by name.
	ChannelsByTag(ctx context.Context, tag string, limit int) ([]*ChannelInfo, error)

	// SearchChannels returns channels whose name or title contains q (case-insensitive).
	SearchChannels(ctx context.Context, q string, limit int) ([]*ChannelInfo, error)

	// PopularTags returns the tags carried by the most channels.
	PopularTags(ctx context.Context, limit int) ([]TagCount, error)

	// Follow makes the actor follow the channel (idempotent). Following yourself is EINVALID.
	Follow(ctx context.Context, actor *User, channel string) error

	// Unfollow stops following (idempotent).
	Unfollow(ctx context.Context, actor *User, channel string) error

	// IsFollowing reports whether the user follows the channel.
	IsFollowing(ctx context.Context, userID int64, channel string) (bool, error)

	// Following returns the channels the user follows, by name.
	Following(ctx context.Context, userID int64) ([]*ChannelInfo, error)

	// FollowerIDs returns the IDs of the channel's followers (for notifications).
	FollowerIDs(ctx context.Context, channel string) ([]int64, error)
}

// ChatMessage is one live chat message.
type ChatMessage struct {
	ID        int64     `json:"id"`
	Channel   string    `json:"-"`
	UserID    int64     `json:"-"`
	User      string    `json:"user"`
	Text      string    `json:"text"`
	CreatedAt time.Time `json:"time"`
}

// ChatBan keeps a user out of a channel's chat until Until (zero: for ever).
type ChatBan struct {
	Channel string
	UserID  int64
	Until   time.Time
}

// ChatService stores chat and its moderation. Moderators of a channel are its owner and
// site admins.
type ChatService interface {
	// SaveMessage stores a message (setting ID and CreatedAt). It fails with EFORBIDDEN when
	// the user is banned or timed out in that chat, EINVALID for an empty or too long text.
	SaveMessage(ctx context.Context, m *ChatMessage) error

	// RecentMessages returns the last n messages of the channel, oldest first.
	RecentMessages(ctx context.Context, channel string, n int) ([]*ChatMessage, error)

	// DeleteMessage deletes a message; actor must moderate its channel. It returns the channel.
	DeleteMessage(ctx context.Context, actor *User, id int64) (string, error)

	// BanFromChat bans (d == 0) or times out (d > 0) a user in a channel's chat; actor must
	// moderate the channel and cannot ban themself or the owner.
	BanFromChat(ctx context.Context, actor *User, channel string, username string, d time.Duration) error

	// UnbanFromChat lifts a ban or time-out.
	UnbanFromChat(ctx context.Context, actor *User, channel string, username string) error

	// ChatBanned reports whether the user may not chat in the channel now, and until when.
	ChatBanned(ctx context.Context, channel string, userID int64) (bool, time.Time, error)
}

// Video is something comments attach to: a channel's live video, or (later) a recording.
type Video struct {
	ID      int64  `json:"id"`
	Kind    string `json:"kind"` // "live" or "recording"
	Channel string `json:"channel"`
}

// Comment is a comment on a video.
type Comment struct {
	ID        int64      `json:"id"`
	VideoID   int64      `json:"video_id"`
	UserID    int64      `json:"-"`
	User      string     `json:"user"`
	Text      string     `json:"text"`
	CreatedAt time.Time  `json:"created_at"`
	EditedAt  *time.Time `json:"edited_at,omitempty"`
}

// CommentService stores comments on videos.
type CommentService interface {
	// ChannelVideo returns the live video of a channel (created with the channel).
	ChannelVideo(ctx context.Context, channel string) (*Video, error)

	// Comments returns a video's comments, oldest first.
	Comments(ctx context.Context, videoID int64, offset, limit int) ([]*Comment, error)

	// CreateComment adds a comment as actor.
	CreateComment(ctx context.Context, actor *User, videoID int64, text string) (*Comment, error)

	// UpdateComment edits a comment; only its author may.
	UpdateComment(ctx context.Context, actor *User, id int64, text string) (*Comment, error)

	// DeleteComment deletes a comment; its author, the video's channel owner and admins may.
	DeleteComment(ctx context.Context, actor *User, id int64) error
}

// Notification tells a user something happened (a followed channel went live).
type Notification struct {
	ID        int64      `json:"id"`
	Kind      string     `json:"kind"` // "live"
	Channel   string     `json:"channel"`
	Text      string     `json:"text"`
	CreatedAt time.Time  `json:"created_at"`
	ReadAt    *time.Time `json:"read_at,omitempty"`
}

// NotificationService stores site notifications.
type NotificationService interface {
	// Notify adds the same notification for each user.
	Notify(ctx context.Context, userIDs []int64, n Notification) error

	// Notifications returns the user's newest notifications.
	Notifications(ctx context.Context, userID int64, limit int) ([]*Notification, error)

	// UnreadCount returns how many of the user's notifications are unread.
	UnreadCount(ctx context.Context, userID int64) (int, error)

	// MarkNotificationsRead marks all the user's notifications read.
	MarkNotificationsRead(ctx context.Context, userID int64) error
}

// Settings are site settings that admins change at run time.
type Settings struct {
	SiteName         string `json:"site_name"`
	RegistrationOpen bool   `json:"registration_open"`
}

// SettingsService reads and changes site settings.
type SettingsService interface {
	Settings(ctx context.Context) (*Settings, error)
	// UpdateSettings changes them; actor must be an admin.
	UpdateSettings(ctx context.Context, actor *User, s Settings) (*Settings, error)
}
