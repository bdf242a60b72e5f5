package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/onair/onair/internal/onair"
)

// videoKindLive is the kind of a channel's live video (the other kind is "recording").
const videoKindLive = "live"

var _ onair.CommentService = (*CommentService)(nil)

// CommentService implements onair.CommentService on a DB. Comments attach to videos: each
// channel has one live video, created with it; recordings will add theirs.
type CommentService struct {
	db *DB
}

// NewCommentService returns a CommentService on db.
func NewCommentService(db *DB) *CommentService {
	return &CommentService{db: db}
}

func errVideoNotFound() error   { return onair.Errorf(onair.ENOTFOUND, "Video not found.") }
func errCommentNotFound() error { return onair.Errorf(onair.ENOTFOUND, "Comment not found.") }

// ChannelVideo returns the live video of the channel, or ENOTFOUND.
func (s *CommentService) ChannelVideo(ctx context.Context, channel string) (*onair.Video, error) {
	db := s.db
	var v onair.Video
	err := db.db.QueryRowContext(ctx, db.q(`
		SELECT v.id, v.kind, c.name
		FROM videos v
		JOIN channels c ON c.id = v.channel_id
		WHERE c.name = ? AND v.kind = ?
		ORDER BY v.id
		LIMIT 1`), channel, videoKindLive).Scan(&v.ID, &v.Kind, &v.Channel)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, onair.Errorf(onair.ENOTFOUND, "Channel %q not found.", channel)
	} else if err != nil {
		return nil, fmt.Errorf("channel video: %w", err)
	}
	return &v, nil
}

// FindVideo returns the video, or ENOTFOUND.
func (s *CommentService) FindVideo(ctx context.Context, id int64) (*onair.Video, error) {
	v, _, err := s.db.findVideo(ctx, id)
	return v, err
}

// findVideo returns the video and the owner of its channel, or ENOTFOUND.
func (db *DB) findVideo(ctx context.Context, id int64) (*onair.Video, int64, error) {
	var v onair.Video
	var owner int64
	err := db.db.QueryRowContext(ctx, db.q(`
		SELECT v.id, v.kind, c.name, c.user_id
		FROM videos v
		JOIN channels c ON c.id = v.channel_id
		WHERE v.id = ?`), id).Scan(&v.ID, &v.Kind, &v.Channel, &owner)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, errVideoNotFound()
	} else if err != nil {
		return nil, 0, fmt.Errorf("find video: %w", err)
	}
	return &v, owner, nil
}

const commentColumns = `m.id, m.video_id, m.user_id, u.username, m.body, m.created_at, m.edited_at`

func scanComment(row rowScanner, extra ...any) (*onair.Comment, error) {
	var c onair.Comment
	var created int64
	var edited sql.NullInt64
	dest := append([]any{&c.ID, &c.VideoID, &c.UserID, &c.User, &c.Text, &created, &edited}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	c.CreatedAt = fromMillis(created)
	c.EditedAt = nullMillis(edited)
	return &c, nil
}

// Comments returns the video's comments oldest first, from offset, at most limit (default
// 50, at most 1000). An unknown video is ENOTFOUND.
func (s *CommentService) Comments(ctx context.Context, videoID int64, offset, limit int) ([]*onair.Comment, error) {
	db := s.db
	if _, _, err := db.findVideo(ctx, videoID); err != nil {
		return nil, err
	}
	rows, err := db.db.QueryContext(ctx, db.q(`
		SELECT `+commentColumns+`
		FROM comments m
		JOIN users u ON u.id = m.user_id
		WHERE m.video_id = ?
		ORDER BY m.id
		LIMIT ? OFFSET ?`), videoID, clampLimit(limit), max(offset, 0))
	if err != nil {
		return nil, fmt.Errorf("comments: %w", err)
	}
	defer rows.Close()
	comments := []*onair.Comment{}
	for rows.Next() {
		c, err := scanComment(rows)
		if err != nil {
			return nil, fmt.Errorf("comments: %w", err)
		}
		comments = append(comments, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("comments: %w", err)
	}
	return comments, nil
}

// CreateComment adds a comment by actor. The text is trimmed and must be 1 to
// onair.MaxCommentLen characters (EINVALID); an unknown video is ENOTFOUND.
func (s *CommentService) CreateComment(ctx context.Context, actor *onair.User, videoID int64, text string) (*onair.Comment, error) {
	if err := requireActor(actor); err != nil {
		return nil, err
	}
	text, err := cleanText("Comment", text, onair.MaxCommentLen, true, true)
	if err != nil {
		return nil, err
	}
	db := s.db
	if _, _, err := db.findVideo(ctx, videoID); err != nil {
		return nil, err
	}
	now := db.now()
	id, err := db.dialect.insertID(ctx, db.db,
		`INSERT INTO comments (video_id, user_id, body, created_at) VALUES (?, ?, ?, ?)`,
		videoID, actor.ID, text, millis(now))
	if err != nil {
		return nil, fmt.Errorf("create comment: %w", err)
	}
	return &onair.Comment{ID: id, VideoID: videoID, UserID: actor.ID, User: actor.Username, Text: text, CreatedAt: now}, nil
}

// findComment returns the comment and the owner of its video's channel, or ENOTFOUND.
func (db *DB) findComment(ctx context.Context, id int64) (*onair.Comment, int64, error) {
	var owner int64
	c, err := scanComment(db.db.QueryRowContext(ctx, db.q(`
		SELECT `+commentColumns+`, ch.user_id
		FROM comments m
		JOIN users u ON u.id = m.user_id
		JOIN videos v ON v.id = m.video_id
		JOIN channels ch ON ch.id = v.channel_id
		WHERE m.id = ?`), id), &owner)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, errCommentNotFound()
	} else if err != nil {
		return nil, 0, fmt.Errorf("find comment: %w", err)
	}
	return c, owner, nil
}

// UpdateComment replaces the text of a comment and sets its EditedAt; only its author may
// (EFORBIDDEN otherwise).
func (s *CommentService) UpdateComment(ctx context.Context, actor *onair.User, id int64, text string) (*onair.Comment, error) {
	if err := requireActor(actor); err != nil {
		return nil, err
	}
	text, err := cleanText("Comment", text, onair.MaxCommentLen, true, true)
	if err != nil {
		return nil, err
	}
	db := s.db
	c, _, err := db.findComment(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.UserID != actor.ID {
		return nil, onair.Errorf(onair.EFORBIDDEN, "You can only edit your own comments.")
	}
	now := db.now()
	if _, err := db.db.ExecContext(ctx, db.q(`UPDATE comments SET body = ?, edited_at = ? WHERE id = ?`), text, millis(now), id); err != nil {
		return nil, fmt.Errorf("update comment: %w", err)
	}
	c.Text, c.EditedAt = text, &now
	return c, nil
}

// DeleteComment deletes a comment; its author, the owner of the video's channel and
// admins may (EFORBIDDEN otherwise).
func (s *CommentService) DeleteComment(ctx context.Context, actor *onair.User, id int64) error {
	if err := requireActor(actor); err != nil {
		return err
	}
	db := s.db
	c, owner, err := db.findComment(ctx, id)
	if err != nil {
		return err
	}
	if c.UserID != actor.ID && owner != actor.ID && !actor.IsAdmin {
		return onair.Errorf(onair.EFORBIDDEN, "You cannot delete this comment.")
	}
	if _, err := db.db.ExecContext(ctx, db.q(`DELETE FROM comments WHERE id = ?`), id); err != nil {
		return fmt.Errorf("delete comment: %w", err)
	}
	return nil
}
