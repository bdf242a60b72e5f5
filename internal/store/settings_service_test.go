package store_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/store"
)

func TestSettingsService(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newEnv(t, b)
		ctx := t.Context()
		boss := e.mustUser(t, "boss")
		alice := e.mustUser(t, "alice")

		st, err := e.settings.Settings(ctx)
		require.NoError(t, err)
		require.Equal(t, &onair.Settings{SiteName: "onair", RegistrationOpen: true}, st)

		cases := []struct {
			name  string
			actor *onair.User
			st    onair.Settings
			code  string
			msg   string
		}{
			{name: "anonymous", st: onair.Settings{SiteName: "x"}, code: onair.EUNAUTHORIZED, msg: "You must be signed in."},
			{name: "not admin", actor: alice, st: onair.Settings{SiteName: "x"}, code: onair.EFORBIDDEN, msg: "Only site admins can do that."},
			{name: "empty name", actor: boss, st: onair.Settings{SiteName: "  "}, code: onair.EINVALID, msg: "Site name must not be empty."},
			{name: "long name", actor: boss, st: onair.Settings{SiteName: strings.Repeat("x", 61)}, code: onair.EINVALID,
				msg: "Site name must be at most 60 characters."},
		}
		for _, ca := range cases {
			t.Run(ca.name, func(t *testing.T) {
				_, err := e.settings.UpdateSettings(ctx, ca.actor, ca.st)
				requireMessage(t, err, ca.code, ca.msg)
			})
		}

		got, err := e.settings.UpdateSettings(ctx, boss, onair.Settings{SiteName: " My Streams ", RegistrationOpen: false})
		require.NoError(t, err)
		require.Equal(t, &onair.Settings{SiteName: "My Streams", RegistrationOpen: false}, got)
		st, err = e.settings.Settings(ctx)
		require.NoError(t, err)
		require.Equal(t, got, st)

		// Again (an update of existing rows), and seen from another handle.
		_, err = e.settings.UpdateSettings(ctx, boss, onair.Settings{SiteName: "Ünïcode ✓", RegistrationOpen: true})
		require.NoError(t, err)
		other := MustOpenDSN(t, e.db.DSN)
		st, err = store.NewSettingsService(other).Settings(ctx)
		require.NoError(t, err)
		require.Equal(t, &onair.Settings{SiteName: "Ünïcode ✓", RegistrationOpen: true}, st)
		require.Equal(t, 2, e.count(t, `SELECT COUNT(*) FROM settings`))
	})
}
