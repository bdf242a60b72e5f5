package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/onair/onair/internal/onair"
)

// channelInfoColumns are the columns scanChannelInfo reads, from a table aliased c.
const channelInfoColumns = channelColumns + `, c.recording, c.transcode, (SELECT COUNT(*) FROM follows f WHERE f.channel_id = c.id)`

// scanChannelInfo scans channelInfoColumns. Tags are left empty for loadTags.
func scanChannelInfo(row rowScanner) (*onair.ChannelInfo, error) {
	info := &onair.ChannelInfo{Tags: []string{}}
	ch, err := scanChannel(row, &info.Recording, &info.Transcode, &info.Followers)
	if err != nil {
		return nil, err
	}
	info.Channel = *ch
	return info, nil
}

// tagBatch bounds the ids of one IN list.
const tagBatch = 500

// loadTags sets the Tags of infos, in the order their owners gave them.
func (db *DB) loadTags(ctx context.Context, q querier, infos []*onair.ChannelInfo) error {
	byID := make(map[int64]*onair.ChannelInfo, len(infos))
	ids := make([]int64, 0, len(infos))
	for _, info := range infos {
		if _, ok := byID[info.ID]; !ok {
			ids = append(ids, info.ID)
		}
		byID[info.ID] = info
	}
	for len(ids) > 0 {
		batch := ids[:min(len(ids), tagBatch)]
		ids = ids[len(batch):]
		in, args := inArgs(batch)
		rows, err := q.QueryContext(ctx, db.q(`SELECT channel_id, tag FROM channel_tags WHERE channel_id IN (`+in+`) ORDER BY channel_id, pos`), args...)
		if err != nil {
			return fmt.Errorf("load tags: %w", err)
		}
		for rows.Next() {
			var id int64
			var tag string
			if err := rows.Scan(&id, &tag); err != nil {
				rows.Close()
				return fmt.Errorf("load tags: %w", err)
			}
			if info := byID[id]; info != nil {
				info.Tags = append(info.Tags, tag)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("load tags: %w", err)
		}
	}
	return nil
}

// listChannels runs query, which selects channelInfoColumns, and loads the tags.
func (db *DB) listChannels(ctx context.Context, query string, args ...any) ([]*onair.ChannelInfo, error) {
	rows, err := db.db.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, err
	}
	infos := []*onair.ChannelInfo{}
	for rows.Next() {
		info, err := scanChannelInfo(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		infos = append(infos, info)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, err
	}
	if err := db.loadTags(ctx, db.db, infos); err != nil {
		return nil, err
	}
	return infos, nil
}

// findChannelOwner returns the id and owner of the named channel, or ENOTFOUND.
func (db *DB) findChannelOwner(ctx context.Context, q querier, name string) (id, ownerID int64, err error) {
	err = q.QueryRowContext(ctx, db.q(`SELECT id, user_id FROM channels WHERE name = ?`), name).Scan(&id, &ownerID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, onair.Errorf(onair.ENOTFOUND, "Channel %q not found.", name)
	} else if err != nil {
		return 0, 0, fmt.Errorf("find channel: %w", err)
	}
	return id, ownerID, nil
}

// ChannelInfo returns the channel with its tags, recording switch and follower count, or
// ENOTFOUND.
func (s *ChannelService) ChannelInfo(ctx context.Context, name string) (*onair.ChannelInfo, error) {
	db := s.db
	info, err := scanChannelInfo(db.db.QueryRowContext(ctx, db.q(`SELECT `+channelInfoColumns+` FROM channels c WHERE c.name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, onair.Errorf(onair.ENOTFOUND, "Channel %q not found.", name)
	} else if err != nil {
		return nil, fmt.Errorf("channel info: %w", err)
	}
	if err := db.loadTags(ctx, db.db, []*onair.ChannelInfo{info}); err != nil {
		return nil, fmt.Errorf("channel info: %w", err)
	}
	return info, nil
}

// UpdateChannel changes the settings of the actor's own channel and returns it. Title
// (one line, at most onair.MaxTitleLen characters) and description (at most
// onair.MaxDescriptionLen) are trimmed; tags are normalised (see normalizeTags) and
// replace the old ones. Invalid input fails with EINVALID and changes nothing.
func (s *ChannelService) UpdateChannel(ctx context.Context, actor *onair.User, upd onair.ChannelUpdate) (*onair.ChannelInfo, error) {
	if err := requireActor(actor); err != nil {
		return nil, err
	}
	var set []string
	var args []any
	if upd.Title != nil {
		title, err := cleanText("Title", *upd.Title, onair.MaxTitleLen, false, false)
		if err != nil {
			return nil, err
		}
		set, args = append(set, "title = ?"), append(args, title)
	}
	if upd.Description != nil {
		desc, err := cleanText("Description", *upd.Description, onair.MaxDescriptionLen, true, false)
		if err != nil {
			return nil, err
		}
		set, args = append(set, "description = ?"), append(args, desc)
	}
	if upd.Recording != nil {
		set, args = append(set, "recording = ?"), append(args, *upd.Recording)
	}
	if upd.Transcode != nil {
		set, args = append(set, "transcode = ?"), append(args, *upd.Transcode)
	}
	var tags []string
	if upd.Tags != nil {
		var err error
		if tags, err = normalizeTags(*upd.Tags); err != nil {
			return nil, err
		}
	}

	db := s.db
	var name string
	err := db.withTx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, db.q(`SELECT id, name FROM channels WHERE user_id = ?`+db.dialect.forUpdate()), actor.ID).Scan(&id, &name)
		if errors.Is(err, sql.ErrNoRows) {
			return onair.Errorf(onair.ENOTFOUND, "Channel not found.")
		} else if err != nil {
			return fmt.Errorf("find channel: %w", err)
		}
		if len(set) > 0 {
			if _, err := tx.ExecContext(ctx, db.q(`UPDATE channels SET `+strings.Join(set, ", ")+` WHERE id = ?`), append(args, id)...); err != nil {
				return fmt.Errorf("update channel: %w", err)
			}
		}
		if upd.Tags != nil {
			if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM channel_tags WHERE channel_id = ?`), id); err != nil {
				return fmt.Errorf("delete tags: %w", err)
			}
			for i, tag := range tags {
				if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO channel_tags (channel_id, tag, pos) VALUES (?, ?, ?)`), id, tag, i); err != nil {
					return fmt.Errorf("insert tag: %w", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update channel: %w", err)
	}
	return s.ChannelInfo(ctx, name)
}

// ChannelsByTag returns up to limit channels (default 50, at most 1000) carrying the tag,
// normalised, by name. Channels of banned users are left out. A tag that cannot exist
// gives no channels.
func (s *ChannelService) ChannelsByTag(ctx context.Context, tag string, limit int) ([]*onair.ChannelInfo, error) {
	tag, ok := normalizeTag(tag)
	if !ok {
		return []*onair.ChannelInfo{}, nil
	}
	infos, err := s.db.listChannels(ctx, `
		SELECT `+channelInfoColumns+`
		FROM channels c
		JOIN channel_tags t ON t.channel_id = c.id
		JOIN users u ON u.id = c.user_id
		WHERE t.tag = ? AND u.banned = ?
		ORDER BY c.name
		LIMIT ?`, tag, false, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("channels by tag: %w", err)
	}
	return infos, nil
}

// maxSearchLen bounds a search query, in characters.
const maxSearchLen = 100

// SearchChannels returns up to limit channels (default 50, at most 1000), by name, whose
// name or title contains q, trimmed, without regard to case. The wildcards % and _ in q
// match themselves. An empty q gives no channels. Channels of banned users are left out.
// Case is folded for ASCII on SQLite, and for all of Unicode on PostgreSQL and MySQL.
func (s *ChannelService) SearchChannels(ctx context.Context, q string, limit int) ([]*onair.ChannelInfo, error) {
	q, err := cleanText("Search", q, maxSearchLen, false, false)
	if err != nil {
		return nil, err
	}
	if q == "" {
		return []*onair.ChannelInfo{}, nil
	}
	db := s.db
	pattern := containsPattern(q)
	infos, err := db.listChannels(ctx, `
		SELECT `+channelInfoColumns+`
		FROM channels c
		JOIN users u ON u.id = c.user_id
		WHERE (`+db.dialect.ilike("c.name")+` OR `+db.dialect.ilike("c.title")+`) AND u.banned = ?
		ORDER BY c.name
		LIMIT ?`, pattern, pattern, false, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("search channels: %w", err)
	}
	return infos, nil
}

// PopularTags returns up to limit tags (default 50, at most 1000) by how many channels
// carry them, most first, then by tag. Channels of banned users do not count.
func (s *ChannelService) PopularTags(ctx context.Context, limit int) ([]onair.TagCount, error) {
	db := s.db
	rows, err := db.db.QueryContext(ctx, db.q(`
		SELECT t.tag, COUNT(*)
		FROM channel_tags t
		JOIN channels c ON c.id = t.channel_id
		JOIN users u ON u.id = c.user_id
		WHERE u.banned = ?
		GROUP BY t.tag
		ORDER BY COUNT(*) DESC, t.tag
		LIMIT ?`), false, clampLimit(limit))
	if err != nil {
		return nil, fmt.Errorf("popular tags: %w", err)
	}
	defer rows.Close()
	tags := []onair.TagCount{}
	for rows.Next() {
		var tc onair.TagCount
		if err := rows.Scan(&tc.Tag, &tc.Count); err != nil {
			return nil, fmt.Errorf("popular tags: %w", err)
		}
		tags = append(tags, tc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("popular tags: %w", err)
	}
	return tags, nil
}

// Follow makes the actor follow the channel; following it again is not an error.
// Following your own channel is EINVALID, an unknown channel ENOTFOUND.
func (s *ChannelService) Follow(ctx context.Context, actor *onair.User, channel string) error {
	if err := requireActor(actor); err != nil {
		return err
	}
	db := s.db
	id, owner, err := db.findChannelOwner(ctx, db.db, channel)
	if err != nil {
		return err
	}
	if owner == actor.ID {
		return onair.Errorf(onair.EINVALID, "You cannot follow your own channel.")
	}
	q := db.dialect.insertIgnore("follows", []string{"follower_id", "channel_id"}, []string{"follower_id", "channel_id", "created_at"})
	if _, err := db.db.ExecContext(ctx, db.q(q), actor.ID, id, millis(db.now())); err != nil {
		return fmt.Errorf("follow: %w", err)
	}
	return nil
}

// Unfollow stops the actor following the channel; not following it is not an error. An
// unknown channel is ENOTFOUND.
func (s *ChannelService) Unfollow(ctx context.Context, actor *onair.User, channel string) error {
	if err := requireActor(actor); err != nil {
		return err
	}
	db := s.db
	id, _, err := db.findChannelOwner(ctx, db.db, channel)
	if err != nil {
		return err
	}
	if _, err := db.db.ExecContext(ctx, db.q(`DELETE FROM follows WHERE follower_id = ? AND channel_id = ?`), actor.ID, id); err != nil {
		return fmt.Errorf("unfollow: %w", err)
	}
	return nil
}

// IsFollowing reports whether the user follows the channel. An unknown channel is
// ENOTFOUND.
func (s *ChannelService) IsFollowing(ctx context.Context, userID int64, channel string) (bool, error) {
	db := s.db
	id, _, err := db.findChannelOwner(ctx, db.db, channel)
	if err != nil {
		return false, err
	}
	var n int
	if err := db.db.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM follows WHERE follower_id = ? AND channel_id = ?`), userID, id).Scan(&n); err != nil {
		return false, fmt.Errorf("is following: %w", err)
	}
	return n > 0, nil
}

// Following returns the channels the user follows (at most 1000), by name.
func (s *ChannelService) Following(ctx context.Context, userID int64) ([]*onair.ChannelInfo, error) {
	infos, err := s.db.listChannels(ctx, `
		SELECT `+channelInfoColumns+`
		FROM follows fl
		JOIN channels c ON c.id = fl.channel_id
		WHERE fl.follower_id = ?
		ORDER BY c.name
		LIMIT ?`, userID, maxListLimit)
	if err != nil {
		return nil, fmt.Errorf("following: %w", err)
	}
	return infos, nil
}

// FollowerIDs returns the IDs of the channel's followers, in increasing order. An unknown
// channel is ENOTFOUND.
func (s *ChannelService) FollowerIDs(ctx context.Context, channel string) ([]int64, error) {
	db := s.db
	id, _, err := db.findChannelOwner(ctx, db.db, channel)
	if err != nil {
		return nil, err
	}
	rows, err := db.db.QueryContext(ctx, db.q(`SELECT follower_id FROM follows WHERE channel_id = ? ORDER BY follower_id`), id)
	if err != nil {
		return nil, fmt.Errorf("follower ids: %w", err)
	}
	defer rows.Close()
	ids := []int64{}
	for rows.Next() {
		var uid int64
		if err := rows.Scan(&uid); err != nil {
			return nil, fmt.Errorf("follower ids: %w", err)
		}
		ids = append(ids, uid)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("follower ids: %w", err)
	}
	return ids, nil
}
