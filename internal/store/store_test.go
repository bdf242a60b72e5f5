package store_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(testMain{m})
}

// testMain closes the admin connections to the database servers after the tests, before
// goleak looks for leaked goroutines.
type testMain struct{ m *testing.M }

func (tm testMain) Run() int {
	code := tm.m.Run()
	closeServers()
	return code
}

// testSecret is the DB.Secret of test databases.
var testSecret = bytes.Repeat([]byte{0x42}, store.SecretSize)

// MustOpenDB opens a new SQLite database file in a temporary directory, with migrations
// applied, and closes it at the end of the test.
func MustOpenDB(tb testing.TB) *store.DB {
	tb.Helper()
	return MustOpenDSN(tb, sqliteDSN(tb))
}

// MustOpenDSN opens dsn with the test secret and closes it at the end of the test.
func MustOpenDSN(tb testing.TB, dsn string) *store.DB {
	tb.Helper()
	db := &store.DB{DSN: dsn, Secret: testSecret}
	require.NoError(tb, db.Open(tb.Context()))
	tb.Cleanup(func() { require.NoError(tb, db.Close()) })
	return db
}

// MustCreateUser creates a user with a valid password and returns it with its key.
func MustCreateUser(tb testing.TB, db *store.DB, username string) (*onair.User, onair.StreamKey) {
	tb.Helper()
	u := &onair.User{Username: username}
	key, err := store.NewUserService(db).CreateUser(tb.Context(), u, "password-"+username)
	require.NoError(tb, err)
	return u, key
}

// requireCode checks that err carries the onair error code.
func requireCode(tb testing.TB, err error, code string) {
	tb.Helper()
	require.Error(tb, err)
	require.Equal(tb, code, onair.ErrorCode(err), "error: %v", err)
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name   string
		dsn    string
		secret []byte
		err    string
	}{
		{name: "sqlite scheme", dsn: "sqlite:" + filepath.Join(dir, "a", "b.db"), secret: testSecret},
		{name: "bare path", dsn: filepath.Join(dir, "c.db"), secret: testSecret},
		{name: "memory", dsn: ":memory:", secret: testSecret},
		{name: "sqlite memory", dsn: "sqlite::memory:", secret: testSecret},
		{name: "no dsn", secret: testSecret, err: "open store: dsn required"},
		{name: "empty sqlite path", dsn: "sqlite:", secret: testSecret, err: "open store: dsn: sqlite path required"},
		{name: "question mark", dsn: "sqlite:" + dir + "/x?mode=ro", secret: testSecret,
			err: `open store: dsn: sqlite path "` + dir + `/x?mode=ro" contains '?'`},
		{name: "unknown scheme", dsn: "redis://localhost", secret: testSecret, err: `open store: dsn: unknown scheme "redis"`},
		{name: "postgres bad port", dsn: "postgres://u:s3cret@localhost:port/onair", secret: testSecret,
			err: "open store: dsn: malformed postgres URL"},
		{name: "mysql bad url", dsn: "mysql://u:s3cret@local host/onair", secret: testSecret,
			err: "open store: dsn: malformed mysql URL"},
		{name: "mysql no database", dsn: "mysql://u:s3cret@localhost:3306/", secret: testSecret,
			err: "open store: dsn: mysql database name required"},
		{name: "mysql bad param", dsn: "mysql://u:s3cret@localhost:3306/db?timeout=soon", secret: testSecret,
			err: `open store: dsn: bad mysql parameters: time: invalid duration "soon"`},
		{name: "no secret", dsn: ":memory:", err: "open store: secret must be 32 bytes, got 0"},
		{name: "short secret", dsn: ":memory:", secret: make([]byte, 16), err: "open store: secret must be 32 bytes, got 16"},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			db := &store.DB{DSN: ca.dsn, Secret: ca.secret}
			err := db.Open(t.Context())
			if ca.err != "" {
				require.EqualError(t, err, ca.err)
				require.Nil(t, db.SQL())
				return
			}
			require.NoError(t, err)
			defer func() { require.NoError(t, db.Close()) }()
			require.NoError(t, db.SQL().PingContext(t.Context()))
			// The schema is there.
			_, err = store.NewUserService(db).FindUserByUsername(t.Context(), "nobody")
			requireCode(t, err, onair.ENOTFOUND)
		})
	}
}

func TestOpenPragmas(t *testing.T) {
	db := MustOpenDB(t)
	ctx := t.Context()
	// Check several pooled connections, not just the first.
	conns := make([]interface{ Close() error }, 0, 3)
	for range 3 {
		conn, err := db.SQL().Conn(ctx)
		require.NoError(t, err)
		conns = append(conns, conn)
		var mode string
		var fk, busy int
		require.NoError(t, conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode))
		require.NoError(t, conn.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk))
		require.NoError(t, conn.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy))
		require.Equal(t, "wal", mode)
		require.Equal(t, 1, fk)
		require.Positive(t, busy)
	}
	for _, c := range conns {
		require.NoError(t, c.Close())
	}
}

func TestOpenFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "onair.db")
	db := MustOpenDSN(t, "sqlite:"+path)
	MustCreateUser(t, db, "alice")
	for _, p := range []string{filepath.Dir(path), path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		require.Zero(t, fi.Mode().Perm()&0o077, "%s has mode %04o", p, fi.Mode().Perm())
	}
}

func TestOpenLogsMigrations(t *testing.T) {
	var buf syncBuffer
	db := &store.DB{
		DSN:    sqliteDSN(t),
		Secret: testSecret,
		Logger: slog.New(slog.NewTextHandler(&buf, nil)),
	}
	require.NoError(t, db.Open(t.Context()))
	require.NoError(t, db.Close())
	require.Contains(t, buf.String(), `msg="migration applied" version=1`)
	require.Contains(t, buf.String(), `msg="migration applied" version=2`)
}

// TestReopenRunsNoMigrationTwice checks that reopening a database, also one left as a
// crashed process leaves it (WAL not checkpointed, no clean close), runs no migration
// again and keeps the data.
func TestReopenRunsNoMigrationTwice(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "onair.db")

	db1 := &store.DB{DSN: "sqlite:" + path, Secret: testSecret}
	require.NoError(t, db1.Open(ctx))
	t.Cleanup(func() { require.NoError(t, db1.Close()) })
	_, key := MustCreateUser(t, db1, "alice")

	// A crash: copy the files of the open database, WAL included, before any close.
	crashed := filepath.Join(t.TempDir(), "onair.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		copyFile(t, path+suffix, crashed+suffix)
	}

	// A second handle while the first is still open, then a clean reopen.
	db2 := MustOpenDSN(t, "sqlite:"+path)
	require.Equal(t, appliedMigrations(t, db1), appliedMigrations(t, db2))
	require.NoError(t, db1.Close())
	db3 := MustOpenDSN(t, path)
	db4 := MustOpenDSN(t, "sqlite:"+crashed)

	for _, db := range []*store.DB{db2, db3, db4} {
		versions := appliedMigrations(t, db)
		require.NotEmpty(t, versions)
		seen := map[int64]bool{}
		for _, v := range versions {
			require.False(t, seen[v], "migration %d applied twice", v)
			seen[v] = true
		}
		ch, err := store.NewStreamKeyService(db).ChannelByStreamKey(ctx, key)
		require.NoError(t, err)
		require.Equal(t, "alice", ch.Name)
	}
}

// TestOpenConcurrentMigrations opens one new database from several handles at once, as
// a server and a CLI (or several nodes) starting together would.
func TestOpenConcurrentMigrations(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.newDSN(t)
		const n = 4
		dbs := make([]*store.DB, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			dbs[i] = &store.DB{DSN: dsn, Secret: testSecret}
			wg.Go(func() { errs[i] = dbs[i].Open(t.Context()) })
		}
		wg.Wait()
		for i := range n {
			require.NoError(t, errs[i])
			require.NoError(t, dbs[i].Close())
		}
		db := MustOpenDSN(t, dsn)
		require.Equal(t, []int64{1, 2, 3, 4, 5}, appliedMigrations(t, db))
		MustCreateUser(t, db, "alice")
	})
}

// TestConcurrentHandles runs a "server" and a "CLI" on two *DB handles of the same file
// at once: both write and read without SQLITE_BUSY errors.
func TestConcurrentHandles(t *testing.T) {
	ctx := t.Context()
	dsn := sqliteDSN(t)
	server := MustOpenDSN(t, dsn)
	cli := MustOpenDSN(t, dsn)

	_, key := MustCreateUser(t, server, "streamer")
	const rounds = 20
	var wg sync.WaitGroup
	errs := make(chan error, 4*rounds)
	// The server looks up the key and marks the channel live.
	wg.Go(func() {
		keys := store.NewStreamKeyService(server)
		channels := store.NewChannelService(server)
		for i := range rounds {
			if _, err := keys.ChannelByStreamKey(ctx, key); err != nil && onair.ErrorCode(err) != onair.ENOTFOUND {
				errs <- err
			}
			if err := channels.MarkChannelLive(ctx, "streamer", time.Unix(int64(i), 0)); err != nil {
				errs <- err
			}
		}
	})
	// The CLI creates users and resets keys.
	wg.Go(func() {
		users := store.NewUserService(cli)
		keys := store.NewStreamKeyService(cli)
		for i := range rounds / 4 {
			u := &onair.User{Username: "cli_user_" + string(rune('a'+i))}
			if _, err := users.CreateUser(ctx, u, "a long password"); err != nil {
				errs <- err
			}
			if _, err := keys.ResetStreamKey(ctx, u.ID); err != nil {
				errs <- err
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	// Each handle sees the other's writes.
	for i := range rounds / 4 {
		_, err := store.NewUserService(server).FindUserByUsername(ctx, "cli_user_"+string(rune('a'+i)))
		require.NoError(t, err)
	}
	ch, err := store.NewChannelService(cli).FindChannelByName(ctx, "streamer")
	require.NoError(t, err)
	require.NotNil(t, ch.LastLiveAt)
	require.Equal(t, time.Unix(rounds-1, 0).UTC(), *ch.LastLiveAt)
}

// TestSecretStaysOutOfLogsAndErrors drives every key path with a logger attached and
// checks that no log line or error message holds the key.
func TestSecretStaysOutOfLogsAndErrors(t *testing.T) {
	var buf syncBuffer
	db := &store.DB{
		DSN:    sqliteDSN(t),
		Secret: testSecret,
		Logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	require.NoError(t, db.Open(t.Context()))
	defer func() { require.NoError(t, db.Close()) }()
	ctx := t.Context()

	u, key := MustCreateUser(t, db, "secretive")
	keys := store.NewStreamKeyService(db)
	newKey, err := keys.ResetStreamKey(ctx, u.ID)
	require.NoError(t, err)

	var msgs []string
	for _, k := range []onair.StreamKey{key, onair.StreamKey(key.Reveal() + "x"), onair.StreamKey(newKey.Reveal()[:len(newKey.Reveal())-1] + "2")} {
		_, err := keys.ChannelByStreamKey(ctx, k)
		requireCode(t, err, onair.ENOTFOUND)
		msgs = append(msgs, err.Error(), onair.ErrorMessage(err))
	}
	_, err = store.NewUserService(db).Authenticate(ctx, "secretive", "wrong password")
	requireCode(t, err, onair.EUNAUTHORIZED)
	msgs = append(msgs, err.Error())

	for _, secret := range []string{key.Reveal(), newKey.Reveal(), "password-secretive", "wrong password"} {
		require.NotContains(t, buf.String(), secret)
		for _, m := range msgs {
			require.NotContains(t, m, secret)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use by a slog handler.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// appliedMigrations returns the versions recorded by goose, in order, without version 0.
func appliedMigrations(tb testing.TB, db *store.DB) []int64 {
	tb.Helper()
	rows, err := db.SQL().QueryContext(tb.Context(), `SELECT version_id FROM goose_db_version WHERE version_id > 0 ORDER BY id`)
	require.NoError(tb, err)
	defer rows.Close()
	var versions []int64
	for rows.Next() {
		var v int64
		require.NoError(tb, rows.Scan(&v))
		versions = append(versions, v)
	}
	require.NoError(tb, rows.Err())
	return versions
}

// copyFile copies src to dst.
func copyFile(tb testing.TB, src, dst string) {
	tb.Helper()
	b, err := os.ReadFile(src)
	require.NoError(tb, err)
	require.NoError(tb, os.WriteFile(dst, b, 0o600))
}

// TestCanceledContext checks that the services honour ctx down to the driver.
func TestCanceledContext(t *testing.T) {
	db := MustOpenDB(t)
	u, key := MustCreateUser(t, db, "alice")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	_, err := store.NewUserService(db).CreateUser(ctx, &onair.User{Username: "bob"}, "12345678")
	require.ErrorIs(t, err, context.Canceled)
	_, err = store.NewUserService(db).FindUserByUsername(ctx, "alice")
	require.ErrorIs(t, err, context.Canceled)
	_, err = store.NewStreamKeyService(db).ChannelByStreamKey(ctx, key)
	require.ErrorIs(t, err, context.Canceled)
	_, err = store.NewStreamKeyService(db).ResetStreamKey(ctx, u.ID)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, store.NewChannelService(db).MarkChannelLive(ctx, "alice", time.Now()), context.Canceled)

	sessions := store.NewSessionService(db)
	_, err = sessions.CreateSession(ctx, u.ID)
	require.ErrorIs(t, err, context.Canceled)
	_, err = store.NewChannelService(db).ChannelInfo(ctx, "alice")
	require.ErrorIs(t, err, context.Canceled)
	_, err = store.NewChannelService(db).UpdateChannel(ctx, u, onair.ChannelUpdate{Tags: &[]string{"x"}})
	require.ErrorIs(t, err, context.Canceled)
	err = store.NewChatService(db).SaveMessage(ctx, &onair.ChatMessage{Channel: "alice", UserID: u.ID, Text: "hi"})
	require.ErrorIs(t, err, context.Canceled)
	_, err = store.NewCommentService(db).ChannelVideo(ctx, "alice")
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, store.NewNotificationService(db).Notify(ctx, []int64{u.ID}, onair.Notification{Kind: "live"}), context.Canceled)
	_, err = store.NewSettingsService(db).Settings(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, store.NewUserService(db).DeleteUser(ctx, u, u.ID), context.Canceled)

	// Nothing changed.
	ch, err := store.NewStreamKeyService(db).ChannelByStreamKey(t.Context(), key)
	require.NoError(t, err)
	require.Nil(t, ch.LastLiveAt)
	_, err = store.NewUserService(db).FindUserByUsername(t.Context(), "bob")
	requireCode(t, err, onair.ENOTFOUND)
	info, err := store.NewChannelService(db).ChannelInfo(t.Context(), "alice")
	require.NoError(t, err)
	require.Empty(t, info.Tags)
}
