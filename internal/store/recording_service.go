package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/onair/onair/internal/onair"
)

// videoKindRecording is the kind of a recording's video (videos.ref_id is the recording).
const videoKindRecording = "recording"

// maxReasonLen bounds RecordingFailed reasons (VARCHAR(255) on MySQL).
const maxReasonLen = 200

var _ onair.RecordingService = (*RecordingService)(nil)

// RecordingService implements onair.RecordingService on a DB.
type RecordingService struct {
	db *DB
}

// NewRecordingService returns a RecordingService on db.
func NewRecordingService(db *DB) *RecordingService {
	return &RecordingService{db: db}
}

func errRecordingNotFound() error { return onair.Errorf(onair.ENOTFOUND, "Recording not found.") }

const recordingColumns = `r.id, c.name, c.user_id, r.title, r.started_at, r.ended_at, r.duration_ms,
	r.bytes, r.segments, r.status, r.reason, r.views, r.video_id, r.node`

const recordingFrom = ` FROM recordings r JOIN channels c ON c.id = r.channel_id`

func scanRecording(row rowScanner) (*onair.Recording, error) {
	var r onair.Recording
	var started, durMS int64
	var ended, video sql.NullInt64
	err := row.Scan(&r.ID, &r.Channel, &r.UserID, &r.Title, &started, &ended, &durMS,
		&r.Bytes, &r.Segments, &r.Status, &r.Reason, &r.Views, &video, &r.Node)
	if err != nil {
		return nil, err
	}
	r.StartedAt = fromMillis(started)
	r.EndedAt = nullMillis(ended)
	r.Duration = time.Duration(durMS) * time.Millisecond
	r.VideoID = video.Int64
	return &r, nil
}

// cutText makes s storable without refusing it: valid UTF-8, control characters as
// spaces, trimmed and cut to max characters. It is for texts that come from the system
// (a channel title at the start of a broadcast, a failure reason), not from a form.
func cutText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) > max {
		s = strings.TrimSpace(string([]rune(s)[:max]))
	}
	return s
}

// CreateRecording adds an active recording of rec.Channel and its video, in one
// transaction, and sets rec's ID, UserID, Status and VideoID.
func (s *RecordingService) CreateRecording(ctx context.Context, rec *onair.Recording) error {
	db := s.db
	title := cutText(rec.Title, onair.MaxRecordingTitleLen)
	started := rec.StartedAt
	if started.IsZero() {
		started = db.now()
	}
	started = fromMillis(started.UnixMilli())
	var id, videoID, channelID, userID int64
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, db.q(`SELECT id, user_id FROM channels WHERE name = ?`), rec.Channel).Scan(&channelID, &userID)
		if errors.Is(err, sql.ErrNoRows) {
			return onair.Errorf(onair.ENOTFOUND, "Channel %q not found.", rec.Channel)
		} else if err != nil {
			return fmt.Errorf("find channel: %w", err)
		}
		id, err = db.dialect.insertID(ctx, tx,
			`INSERT INTO recordings (channel_id, title, status, started_at, node) VALUES (?, ?, ?, ?, ?)`,
			channelID, title, onair.RecordingActive, millis(started), rec.Node)
		if err != nil {
			return fmt.Errorf("insert recording: %w", err)
		}
		videoID, err = db.dialect.insertID(ctx, tx,
			`INSERT INTO videos (channel_id, kind, ref_id, created_at) VALUES (?, ?, ?, ?)`,
			channelID, videoKindRecording, id, millis(db.now()))
		if err != nil {
			return fmt.Errorf("insert video: %w", err)
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE recordings SET video_id = ? WHERE id = ?`), videoID, id); err != nil {
			return fmt.Errorf("link video: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create recording: %w", err)
	}
	rec.ID, rec.UserID, rec.VideoID = id, userID, videoID
	rec.Title, rec.StartedAt, rec.Status, rec.Reason = title, started, onair.RecordingActive, ""
	rec.EndedAt = nil
	return nil
}

// UpdateRecordingProgress stores the progress of an active recording. Finished
// recordings and unknown ids are left alone.
func (s *RecordingService) UpdateRecordingProgress(ctx context.Context, id int64, p onair.RecordingProgress) error {
	db := s.db
	_, err := db.db.ExecContext(ctx, db.q(`
		UPDATE recordings SET duration_ms = ?, bytes = ?, segments = ?
		WHERE id = ? AND status = ?`),
		p.Duration.Milliseconds(), p.Bytes, p.Segments, id, onair.RecordingActive)
	if err != nil {
		return fmt.Errorf("update recording progress: %w", err)
	}
	return nil
}

// FinishRecording marks the recording finished. An unknown id is ENOTFOUND.
func (s *RecordingService) FinishRecording(ctx context.Context, id int64, p onair.RecordingProgress, endedAt time.Time) error {
	return s.end(ctx, id, p, endedAt, onair.RecordingFinished, "")
}

// FailRecording marks the recording failed with a reason. An unknown id is ENOTFOUND.
func (s *RecordingService) FailRecording(ctx context.Context, id int64, p onair.RecordingProgress, endedAt time.Time, reason string) error {
	return s.end(ctx, id, p, endedAt, onair.RecordingFailed, cutText(reason, maxReasonLen))
}

func (s *RecordingService) end(ctx context.Context, id int64, p onair.RecordingProgress, endedAt time.Time, status, reason string) error {
	db := s.db
	res, err := db.db.ExecContext(ctx, db.q(`
		UPDATE recordings SET status = ?, reason = ?, ended_at = ?, duration_ms = ?, bytes = ?, segments = ?
		WHERE id = ?`),
		status, reason, millis(endedAt), p.Duration.Milliseconds(), p.Bytes, p.Segments, id)
	if err != nil {
		return fmt.Errorf("end recording: %w", err)
	}
	// MySQL counts matched rows only when they change; a repeated call is no error there,
	// so look the row up instead of trusting RowsAffected.
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		if _, err := s.FindRecording(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// FindRecording returns the recording, or ENOTFOUND.
func (s *RecordingService) FindRecording(ctx context.Context, id int64) (*onair.Recording, error) {
	db := s.db
	r, err := scanRecording(db.db.QueryRowContext(ctx, db.q(`SELECT `+recordingColumns+recordingFrom+` WHERE r.id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errRecordingNotFound()
	} else if err != nil {
		return nil, fmt.Errorf("find recording: %w", err)
	}
	return r, nil
}

// RecordingsByChannel returns the channel's recordings newest first.
func (s *RecordingService) RecordingsByChannel(ctx context.Context, channel string, offset, limit int) ([]*onair.Recording, error) {
	db := s.db
	var channelID int64
	err := db.db.QueryRowContext(ctx, db.q(`SELECT id FROM channels WHERE name = ?`), channel).Scan(&channelID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, onair.Errorf(onair.ENOTFOUND, "Channel %q not found.", channel)
	} else if err != nil {
		return nil, fmt.Errorf("recordings by channel: %w", err)
	}
	return s.list(ctx, "recordings by channel",
		` WHERE r.channel_id = ? ORDER BY r.id DESC LIMIT ? OFFSET ?`, channelID, clampLimit(limit), max(offset, 0))
}

func (s *RecordingService) list(ctx context.Context, what, where string, args ...any) ([]*onair.Recording, error) {
	db := s.db
	rows, err := db.db.QueryContext(ctx, db.q(`SELECT `+recordingColumns+recordingFrom+where), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := []*onair.Recording{}
	for rows.Next() {
		r, err := scanRecording(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// RenameRecording changes the title; only the owner may. The title is trimmed and may
// be empty (pages then show the date).
func (s *RecordingService) RenameRecording(ctx context.Context, actor *onair.User, id int64, title string) (*onair.Recording, error) {
	if err := requireActor(actor); err != nil {
		return nil, err
	}
	title, err := cleanText("Title", title, onair.MaxRecordingTitleLen, false, false)
	if err != nil {
		return nil, err
	}
	r, err := s.FindRecording(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.UserID != actor.ID {
		return nil, onair.Errorf(onair.EFORBIDDEN, "Only the channel's owner can rename its recordings.")
	}
	db := s.db
	if _, err := db.db.ExecContext(ctx, db.q(`UPDATE recordings SET title = ? WHERE id = ?`), title, id); err != nil {
		return nil, fmt.Errorf("rename recording: %w", err)
	}
	r.Title = title
	return r, nil
}

// DeleteRecording deletes a recording; its owner and admins may. Active recordings are
// ECONFLICT.
func (s *RecordingService) DeleteRecording(ctx context.Context, actor *onair.User, id int64) error {
	if err := requireActor(actor); err != nil {
		return err
	}
	r, err := s.FindRecording(ctx, id)
	if err != nil {
		return err
	}
	if r.UserID != actor.ID && !actor.IsAdmin {
		return onair.Errorf(onair.EFORBIDDEN, "You cannot delete this recording.")
	}
	if r.Status == onair.RecordingActive {
		return onair.Errorf(onair.ECONFLICT, "The recording is still running: end the broadcast first.")
	}
	return s.PurgeRecording(ctx, id)
}

// PurgeRecording deletes the recording with its video and the video's comments.
func (s *RecordingService) PurgeRecording(ctx context.Context, id int64) error {
	db := s.db
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM videos WHERE kind = ? AND ref_id = ?`), videoKindRecording, id); err != nil {
			return fmt.Errorf("delete video: %w", err)
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM recordings WHERE id = ?`), id); err != nil {
			return fmt.Errorf("delete recording: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("purge recording: %w", err)
	}
	return nil
}

// AddRecordingView counts one view. An unknown id is ENOTFOUND.
func (s *RecordingService) AddRecordingView(ctx context.Context, id int64) error {
	db := s.db
	res, err := db.db.ExecContext(ctx, db.q(`UPDATE recordings SET views = views + 1 WHERE id = ?`), id)
	if err != nil {
		return fmt.Errorf("add recording view: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return errRecordingNotFound()
	}
	return nil
}

// ActiveRecordings returns the node's recordings still marked active, oldest first.
func (s *RecordingService) ActiveRecordings(ctx context.Context, node string) ([]*onair.Recording, error) {
	return s.list(ctx, "active recordings", ` WHERE r.status = ? AND r.node = ? ORDER BY r.started_at, r.id`,
		onair.RecordingActive, node)
}

// AllRecordings returns every recording, oldest first.
func (s *RecordingService) AllRecordings(ctx context.Context) ([]*onair.Recording, error) {
	return s.list(ctx, "all recordings", ` ORDER BY r.started_at, r.id`)
}
