package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/onair/onair/internal/onair"
)

var (
	_ onair.ChannelService         = (*ChannelService)(nil)
	_ onair.PlatformChannelService = (*ChannelService)(nil)
)

// ChannelService implements onair.ChannelService and onair.PlatformChannelService on a DB.
type ChannelService struct {
	db *DB
}

// NewChannelService returns a ChannelService on db.
func NewChannelService(db *DB) *ChannelService {
	return &ChannelService{db: db}
}

// channelColumns are the columns scanChannel reads, from a table aliased c.
const channelColumns = `c.id, c.user_id, c.name, c.title, c.description, c.last_live_at, c.created_at`

// scanChannel scans channelColumns, then extra.
func scanChannel(row rowScanner, extra ...any) (*onair.Channel, error) {
	var ch onair.Channel
	var lastLive sql.NullInt64
	var created int64
	dest := append([]any{&ch.ID, &ch.UserID, &ch.Name, &ch.Title, &ch.Description, &lastLive, &created}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	ch.LastLiveAt = nullMillis(lastLive)
	ch.CreatedAt = fromMillis(created)
	return &ch, nil
}

// FindChannelByName returns the channel, or ENOTFOUND.
func (s *ChannelService) FindChannelByName(ctx context.Context, name string) (*onair.Channel, error) {
	db := s.db
	ch, err := scanChannel(db.db.QueryRowContext(ctx, db.q(`SELECT `+channelColumns+` FROM channels c WHERE c.name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, onair.Errorf(onair.ENOTFOUND, "Channel %q not found.", name)
	} else if err != nil {
		return nil, fmt.Errorf("find channel: %w", err)
	}
	return ch, nil
}

// FindChannelByUserID returns the user's channel, or ENOTFOUND.
func (s *ChannelService) FindChannelByUserID(ctx context.Context, userID int64) (*onair.Channel, error) {
	db := s.db
	ch, err := scanChannel(db.db.QueryRowContext(ctx, db.q(`SELECT `+channelColumns+` FROM channels c WHERE c.user_id = ?`), userID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, onair.Errorf(onair.ENOTFOUND, "Channel not found.")
	} else if err != nil {
		return nil, fmt.Errorf("find channel: %w", err)
	}
	return ch, nil
}

// MarkChannelLive records that the channel went live at t (kept to the millisecond), or
// fails with ENOTFOUND.
func (s *ChannelService) MarkChannelLive(ctx context.Context, name string, t time.Time) error {
	db := s.db
	// Select, then update by id: "rows affected" of an UPDATE that changes nothing
	// differs between databases (MySQL counts only changed rows).
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, db.q(`SELECT id FROM channels WHERE name = ?`), name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return onair.Errorf(onair.ENOTFOUND, "Channel %q not found.", name)
		} else if err != nil {
			return fmt.Errorf("find channel: %w", err)
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE channels SET last_live_at = ? WHERE id = ?`), millis(t), id); err != nil {
			return fmt.Errorf("update channel: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark channel live: %w", err)
	}
	return nil
}
