package store_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/store"
)

// clock is a settable time source for DB.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a database of one test on one backend with every service on it.
type env struct {
	db       *store.DB
	clock    *clock
	users    *store.UserService
	sessions *store.SessionService
	keys     *store.StreamKeyService
	channels *store.ChannelService
	chat     *store.ChatService
	comments *store.CommentService
	notes    *store.NotificationService
	settings *store.SettingsService
}

// startTime is the clock's start in tests: milliseconds only, as stored.
var startTime = time.Date(2025, 6, 7, 8, 9, 10, 123_000_000, time.UTC)

// newEnv opens a new database on b, closed at the end of the test.
func newEnv(tb testing.TB, b backend) *env {
	tb.Helper()
	clk := &clock{t: startTime}
	db := &store.DB{DSN: b.newDSN(tb), Secret: testSecret, Now: clk.Now}
	require.NoError(tb, db.Open(tb.Context()))
	tb.Cleanup(func() { require.NoError(tb, db.Close()) })
	return &env{
		db:       db,
		clock:    clk,
		users:    store.NewUserService(db),
		sessions: store.NewSessionService(db),
		keys:     store.NewStreamKeyService(db),
		channels: store.NewChannelService(db),
		chat:     store.NewChatService(db),
		comments: store.NewCommentService(db),
		notes:    store.NewNotificationService(db),
		settings: store.NewSettingsService(db),
	}
}

// mustUser creates a user with password "password-NAME" (the first one is an admin).
func (e *env) mustUser(tb testing.TB, name string) *onair.User {
	tb.Helper()
	u, _ := MustCreateUser(tb, e.db, name)
	return u
}

// mustSession starts a session for u.
func (e *env) mustSession(tb testing.TB, u *onair.User) *onair.Session {
	tb.Helper()
	s, err := e.sessions.CreateSession(tb.Context(), u.ID)
	require.NoError(tb, err)
	return s
}

// count returns the result of a COUNT(*) query with `?` placeholders.
func (e *env) count(tb testing.TB, query string, args ...any) int {
	tb.Helper()
	var n int
	require.NoError(tb, e.db.SQL().QueryRowContext(tb.Context(), e.db.Rebind(query), args...).Scan(&n))
	return n
}

// requireMessage checks the code and user message of err.
func requireMessage(tb testing.TB, err error, code, msg string) {
	tb.Helper()
	requireCode(tb, err, code)
	require.Equal(tb, msg, onair.ErrorMessage(err))
}

func ptr[T any](v T) *T { return &v }
