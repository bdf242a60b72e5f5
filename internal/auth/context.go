package auth

import (
	"context"

	"github.com/onair/onair/internal/onair"
)

type contextKey struct{}

// identity is what Middleware stores in a request context.
type identity struct {
	user    *onair.User
	session *onair.Session
}

// NewContext returns a copy of ctx that carries user and session, as Middleware does.
// It is meant for tests of handlers that sit behind Middleware. session may be nil
// (a bearer request); user nil means anonymous.
func NewContext(ctx context.Context, user *onair.User, session *onair.Session) context.Context {
	return context.WithValue(ctx, contextKey{}, identity{user: user, session: session})
}

// UserFromContext returns the signed-in user of a request behind Middleware, or nil
// when the request is anonymous.
func UserFromContext(ctx context.Context) *onair.User {
	id, _ := ctx.Value(contextKey{}).(identity)
	return id.user
}

// SessionFromContext returns the browser session of a request behind Middleware, or nil
// when the request is anonymous or authenticated by a bearer token.
func SessionFromContext(ctx context.Context) *onair.Session {
	id, _ := ctx.Value(contextKey{}).(identity)
	return id.session
}
