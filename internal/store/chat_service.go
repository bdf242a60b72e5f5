package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/onair/onair/internal/onair"
)

var _ onair.ChatService = (*ChatService)(nil)

// ChatService implements onair.ChatService on a DB. Moderators of a channel are its owner
// and site admins.
type ChatService struct {
	db *DB
}

// NewChatService returns a ChatService on db.
func NewChatService(db *DB) *ChatService {
	return &ChatService{db: db}
}

// SaveMessage stores m (trimming its text and setting ID, User and CreatedAt). It fails
// with EINVALID for an empty text or one longer than onair.MaxChatLen characters,
// ENOTFOUND for an unknown channel or user, and EFORBIDDEN when the user is banned from
// the site, banned from the chat or timed out (the message says until when).
func (s *ChatService) SaveMessage(ctx context.Context, m *onair.ChatMessage) error {
	if m == nil {
		return onair.Errorf(onair.EINVALID, "Message required.")
	}
	text, err := cleanText("Message", m.Text, onair.MaxChatLen, true, true)
	if err != nil {
		return err
	}
	db := s.db
	now := db.now()
	var (
		channelID int64
		username  string
		banned    bool
		chatBan   sql.NullInt64 // 1 when a chat ban row exists
		until     sql.NullInt64
	)
	err = db.db.QueryRowContext(ctx, db.q(`
		SELECT c.id, u.username, u.banned, b.channel_id, b.banned_until
		FROM channels c
		JOIN users u ON u.id = ?
		LEFT JOIN chat_bans b ON b.channel_id = c.id AND b.user_id = u.id
		WHERE c.name = ?`), m.UserID, m.Channel).Scan(&channelID, &username, &banned, &chatBan, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return onair.Errorf(onair.ENOTFOUND, "Channel or user not found.")
	} else if err != nil {
		return fmt.Errorf("save message: %w", err)
	}
	if banned {
		return errBanned()
	}
	if chatBan.Valid {
		if err := chatBanError(until, now); err != nil {
			return err
		}
	}
	id, err := db.dialect.insertID(ctx, db.db,
		`INSERT INTO chat_messages (channel_id, user_id, body, created_at) VALUES (?, ?, ?, ?)`,
		channelID, m.UserID, text, millis(now))
	if err != nil {
		return fmt.Errorf("save message: %w", err)
	}
	m.ID, m.User, m.Text, m.CreatedAt = id, username, text, now
	return nil
}

// chatBanError returns the EFORBIDDEN error of a chat ban until until (NULL: for ever),
// or nil when it is over at now.
func chatBanError(until sql.NullInt64, now time.Time) error {
	if !until.Valid {
		return onair.Errorf(onair.EFORBIDDEN, "You are banned from this chat.")
	}
	t := fromMillis(until.Int64)
	if !t.After(now) {
		return nil
	}
	return onair.Errorf(onair.EFORBIDDEN, "You are timed out of this chat until %s.", t.Format("2006-01-02 15:04:05 UTC"))
}

const chatMessageColumns = `m.id, c.name, m.user_id, u.username, m.body, m.created_at`

func scanChatMessage(row rowScanner) (*onair.ChatMessage, error) {
	var m onair.ChatMessage
	var created int64
	if err := row.Scan(&m.ID, &m.Channel, &m.UserID, &m.User, &m.Text, &created); err != nil {
		return nil, err
	}
	m.CreatedAt = fromMillis(created)
	return &m, nil
}

// RecentMessages returns the last n messages of the channel (default 50, at most 1000),
// oldest first. An unknown channel is ENOTFOUND.
func (s *ChatService) RecentMessages(ctx context.Context, channel string, n int) ([]*onair.ChatMessage, error) {
	db := s.db
	id, _, err := db.findChannelOwner(ctx, db.db, channel)
	if err != nil {
		return nil, err
	}
	rows, err := db.db.QueryContext(ctx, db.q(`
		SELECT `+chatMessageColumns+`
		FROM chat_messages m
		JOIN channels c ON c.id = m.channel_id
		JOIN users u ON u.id = m.user_id
		WHERE m.channel_id = ?
		ORDER BY m.id DESC
		LIMIT ?`), id, clampLimit(n))
	if err != nil {
		return nil, fmt.Errorf("recent messages: %w", err)
	}
	defer rows.Close()
	msgs := []*onair.ChatMessage{}
	for rows.Next() {
		m, err := scanChatMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("recent messages: %w", err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recent messages: %w", err)
	}
	slices.Reverse(msgs)
	return msgs, nil
}

// errNotModerator is the error of a chat moderation by someone who may not.
func errNotModerator() error {
	return onair.Errorf(onair.EFORBIDDEN, "Only the channel owner and site admins can moderate this chat.")
}

// DeleteMessage deletes a message and returns its channel. actor must moderate the
// channel; an unknown message is ENOTFOUND.
func (s *ChatService) DeleteMessage(ctx context.Context, actor *onair.User, id int64) (string, error) {
	if err := requireActor(actor); err != nil {
		return "", err
	}
	db := s.db
	var channel string
	var owner int64
	err := db.db.QueryRowContext(ctx, db.q(`
		SELECT c.name, c.user_id
		FROM chat_messages m
		JOIN channels c ON c.id = m.channel_id
		WHERE m.id = ?`), id).Scan(&channel, &owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", onair.Errorf(onair.ENOTFOUND, "Message not found.")
	} else if err != nil {
		return "", fmt.Errorf("delete message: %w", err)
	}
	if owner != actor.ID && !actor.IsAdmin {
		return "", errNotModerator()
	}
	if _, err := db.db.ExecContext(ctx, db.q(`DELETE FROM chat_messages WHERE id = ?`), id); err != nil {
		return "", fmt.Errorf("delete message: %w", err)
	}
	return channel, nil
}

// moderate checks that actor may moderate the channel and returns its id and owner, and
// the id of the named target user.
func (s *ChatService) moderate(ctx context.Context, actor *onair.User, channel, username string) (channelID, ownerID, targetID int64, err error) {
	if err := requireActor(actor); err != nil {
		return 0, 0, 0, err
	}
	db := s.db
	channelID, ownerID, err = db.findChannelOwner(ctx, db.db, channel)
	if err != nil {
		return 0, 0, 0, err
	}
	if ownerID != actor.ID && !actor.IsAdmin {
		return 0, 0, 0, errNotModerator()
	}
	err = db.db.QueryRowContext(ctx, db.q(`SELECT id FROM users WHERE username = ?`), username).Scan(&targetID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, 0, onair.Errorf(onair.ENOTFOUND, "User %q not found.", username)
	} else if err != nil {
		return 0, 0, 0, fmt.Errorf("find user: %w", err)
	}
	return channelID, ownerID, targetID, nil
}

// BanFromChat bans the user from the channel's chat (d == 0) or times them out for d
// (d > 0), replacing an earlier ban. actor must moderate the channel, and cannot target
// themself or the owner.
func (s *ChatService) BanFromChat(ctx context.Context, actor *onair.User, channel string, username string, d time.Duration) error {
	if d < 0 {
		return onair.Errorf(onair.EINVALID, "Time-out must not be negative.")
	}
	channelID, ownerID, targetID, err := s.moderate(ctx, actor, channel, username)
	if err != nil {
		return err
	}
	switch targetID {
	case actor.ID:
		return onair.Errorf(onair.EINVALID, "You cannot ban yourself.")
	case ownerID:
		return onair.Errorf(onair.EFORBIDDEN, "You cannot ban the channel owner.")
	}
	db := s.db
	now := db.now()
	var until sql.NullInt64
	if d > 0 {
		until = sql.NullInt64{Int64: millis(now.Add(d)), Valid: true}
	}
	q := db.dialect.upsert("chat_bans", []string{"channel_id", "user_id"},
		[]string{"channel_id", "user_id", "banned_until", "created_by", "created_at"})
	if _, err := db.db.ExecContext(ctx, db.q(q), channelID, targetID, until, actor.ID, millis(now)); err != nil {
		return fmt.Errorf("ban from chat: %w", err)
	}
	return nil
}

// UnbanFromChat lifts a ban or time-out; none is not an error. actor must moderate the
// channel.
func (s *ChatService) UnbanFromChat(ctx context.Context, actor *onair.User, channel string, username string) error {
	channelID, _, targetID, err := s.moderate(ctx, actor, channel, username)
	if err != nil {
		return err
	}
	db := s.db
	if _, err := db.db.ExecContext(ctx, db.q(`DELETE FROM chat_bans WHERE channel_id = ? AND user_id = ?`), channelID, targetID); err != nil {
		return fmt.Errorf("unban from chat: %w", err)
	}
	return nil
}

// ChatBanned reports whether the user may not chat in the channel now, and until when
// (zero: for ever). Users banned from the site may not chat anywhere, for ever. An
// unknown channel is ENOTFOUND; an unknown user is not banned.
func (s *ChatService) ChatBanned(ctx context.Context, channel string, userID int64) (bool, time.Time, error) {
	db := s.db
	channelID, _, err := db.findChannelOwner(ctx, db.db, channel)
	if err != nil {
		return false, time.Time{}, err
	}
	var siteBanned bool
	var chatBan, until sql.NullInt64
	err = db.db.QueryRowContext(ctx, db.q(`
		SELECT u.banned, b.channel_id, b.banned_until
		FROM users u
		LEFT JOIN chat_bans b ON b.user_id = u.id AND b.channel_id = ?
		WHERE u.id = ?`), channelID, userID).Scan(&siteBanned, &chatBan, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return false, time.Time{}, nil
	} else if err != nil {
		return false, time.Time{}, fmt.Errorf("chat banned: %w", err)
	}
	switch {
	case siteBanned:
		return true, time.Time{}, nil
	case !chatBan.Valid:
		return false, time.Time{}, nil
	case !until.Valid:
		return true, time.Time{}, nil
	}
	t := fromMillis(until.Int64)
	if !t.After(db.now()) {
		return false, time.Time{}, nil
	}
	return true, t, nil
}
