package auth_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/onair/onair/internal/onair"
)

// fakeStore implements onair.SessionService and onair.AccountService the way the SQL
// store documents them: unknown or expired tokens are EUNAUTHORIZED, unknown users
// ENOTFOUND.
type fakeStore struct {
	Now func() time.Time
	// Life is the session life. Default: 30 days.
	Life time.Duration
	// Err, when set, is returned by every call (a failing database).
	Err error

	mu        sync.Mutex
	users     map[int64]*onair.User
	sessions  map[string]*onair.Session
	apiTokens map[string]int64
}

var (
	_ onair.SessionService = (*fakeStore)(nil)
	_ onair.AccountService = (*fakeStore)(nil)
)

func newFakeStore(now func() time.Time) *fakeStore {
	return &fakeStore{
		Now:       now,
		Life:      30 * 24 * time.Hour,
		users:     map[int64]*onair.User{},
		sessions:  map[string]*onair.Session{},
		apiTokens: map[string]int64{},
	}
}

func (s *fakeStore) addUser(u *onair.User) *onair.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[u.ID] = u
	return u
}

func (s *fakeStore) setBanned(id int64, banned bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id].Banned = banned
}

func (s *fakeStore) sessionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *fakeStore) CreateSession(ctx context.Context, userID int64) (*onair.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	u, ok := s.users[userID]
	if !ok {
		return nil, onair.Errorf(onair.ENOTFOUND, "User not found.")
	}
	now := s.Now()
	sess := &onair.Session{
		Token:     onair.Secret(randomToken()),
		CSRFToken: randomToken(),
		User:      u,
		CreatedAt: now,
		ExpiresAt: now.Add(s.Life),
	}
	s.sessions[sess.Token.Reveal()] = sess
	return sess, nil
}

func (s *fakeStore) FindSession(ctx context.Context, token onair.Secret) (*onair.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	sess, ok := s.sessions[token.Reveal()]
	if !ok || !s.Now().Before(sess.ExpiresAt) {
		return nil, onair.Errorf(onair.EUNAUTHORIZED, "Session expired.")
	}
	cp := *sess
	u := *s.users[sess.User.ID]
	cp.User = &u
	return &cp, nil
}

func (s *fakeStore) DeleteSession(ctx context.Context, token onair.Secret) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return s.Err
	}
	delete(s.sessions, token.Reveal())
	return nil
}

func (s *fakeStore) CreateAPIToken(ctx context.Context, userID int64, name string) (onair.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return "", s.Err
	}
	t := randomToken()
	s.apiTokens[t] = userID
	return onair.Secret(t), nil
}

func (s *fakeStore) FindUserByAPIToken(ctx context.Context, token onair.Secret) (*onair.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	id, ok := s.apiTokens[token.Reveal()]
	if !ok {
		return nil, onair.Errorf(onair.EUNAUTHORIZED, "Invalid API token.")
	}
	u := *s.users[id]
	return &u, nil
}

func (s *fakeStore) FindUserByID(ctx context.Context, id int64) (*onair.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return nil, s.Err
	}
	u, ok := s.users[id]
	if !ok {
		return nil, onair.Errorf(onair.ENOTFOUND, "User not found.")
	}
	cp := *u
	return &cp, nil
}

var errNotInFake = errors.New("not implemented by the fake")

func (s *fakeStore) Authenticate(ctx context.Context, username, password string) (*onair.User, error) {
	return nil, errNotInFake
}

func (s *fakeStore) ChangePassword(ctx context.Context, userID int64, oldPassword, newPassword string, keepSession onair.Secret) error {
	return errNotInFake
}

func (s *fakeStore) DeleteUser(ctx context.Context, actor *onair.User, userID int64) error {
	return errNotInFake
}

func (s *fakeStore) ListUsers(ctx context.Context, actor *onair.User, offset, limit int) ([]*onair.User, error) {
	return nil, errNotInFake
}

func (s *fakeStore) SetUserBanned(ctx context.Context, actor *onair.User, userID int64, banned bool) error {
	return errNotInFake
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

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
