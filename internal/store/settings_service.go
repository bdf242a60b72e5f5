package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/onair/onair/internal/onair"
)

// Default site settings, used until an admin changes them.
const (
	DefaultSiteName         = "onair"
	DefaultRegistrationOpen = true
)

// Names of the rows of the settings table.
const (
	settingSiteName         = "site_name"
	settingRegistrationOpen = "registration_open"
)

var _ onair.SettingsService = (*SettingsService)(nil)

// SettingsService implements onair.SettingsService on a DB, as name/value rows.
type SettingsService struct {
	db *DB
}

// NewSettingsService returns a SettingsService on db.
func NewSettingsService(db *DB) *SettingsService {
	return &SettingsService{db: db}
}

// Settings returns the site settings, with defaults for those never set.
func (s *SettingsService) Settings(ctx context.Context) (*onair.Settings, error) {
	db := s.db
	rows, err := db.db.QueryContext(ctx, `SELECT name, value FROM settings`)
	if err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	defer rows.Close()
	st := &onair.Settings{SiteName: DefaultSiteName, RegistrationOpen: DefaultRegistrationOpen}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("settings: %w", err)
		}
		switch name {
		case settingSiteName:
			st.SiteName = value
		case settingRegistrationOpen:
			if b, err := strconv.ParseBool(value); err == nil {
				st.RegistrationOpen = b
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	return st, nil
}

// UpdateSettings replaces the site settings and returns them. actor must be an admin.
// The site name is trimmed and must be 1 to 60 characters on one line.
func (s *SettingsService) UpdateSettings(ctx context.Context, actor *onair.User, st onair.Settings) (*onair.Settings, error) {
	if err := requireAdmin(actor); err != nil {
		return nil, err
	}
	name, err := cleanText("Site name", st.SiteName, maxSiteNameLen, false, true)
	if err != nil {
		return nil, err
	}
	db := s.db
	q := db.q(db.dialect.upsert("settings", []string{"name"}, []string{"name", "value"}))
	err = db.withTx(ctx, func(tx *sql.Tx) error {
		for _, kv := range [][2]string{
			{settingSiteName, name},
			{settingRegistrationOpen, strconv.FormatBool(st.RegistrationOpen)},
		} {
			if _, err := tx.ExecContext(ctx, q, kv[0], kv[1]); err != nil {
				return fmt.Errorf("save %s: %w", kv[0], err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update settings: %w", err)
	}
	return &onair.Settings{SiteName: name, RegistrationOpen: st.RegistrationOpen}, nil
}
