package store

import "testing"

// IsUniqueViolation exposes the dialect's unique-violation check to the external tests.
func IsUniqueViolation(db *DB, err error) bool { return db.dialect.isUniqueViolation(err) }

// initialPasswordCost is the cost before the tests lowered it (package variables are
// initialised before init runs).
var initialPasswordCost = passwordCost

// testPasswordCost is the cheapest argon2id the decoder accepts: the suite creates
// hundreds of users, and hashing with the real cost would dominate its time.
var testPasswordCost = argonCost{memory: 8, time: 1, threads: 1}

func init() { passwordCost = testPasswordCost }

// UseRealPasswordCost makes HashPassword use the production cost until the end of the
// test. Tests using it must not run in parallel with others.
func UseRealPasswordCost(tb testing.TB) {
	passwordCost = defaultArgonCost
	tb.Cleanup(func() { passwordCost = testPasswordCost })
}
