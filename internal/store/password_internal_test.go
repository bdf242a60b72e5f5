package store

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHashPassword(t *testing.T) {
	// Outside the tests, HashPassword uses the OWASP cost.
	require.Equal(t, argonCost{memory: 19456, time: 2, threads: 1}, initialPasswordCost)
	require.Equal(t, defaultArgonCost, initialPasswordCost)
	UseRealPasswordCost(t)
	h1, err := HashPassword("correct horse")
	require.NoError(t, err)
	h2, err := HashPassword("correct horse")
	require.NoError(t, err)
	require.NotEqual(t, h1, h2, "salts differ")
	require.Regexp(t, `^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`, h1)

	cases := []struct {
		name     string
		password string
		ok       bool
	}{
		{name: "right", password: "correct horse", ok: true},
		{name: "wrong", password: "correct horsE"},
		{name: "prefix", password: "correct hors"},
		{name: "longer", password: "correct horse "},
		{name: "empty"},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			ok, err := VerifyPassword(h1, ca.password)
			require.NoError(t, err)
			require.Equal(t, ca.ok, ok)
		})
	}
}

// referenceHash is the argon2id test vector of golang.org/x/crypto/argon2 (from the
// reference implementation) for password "password", salt "somesalt", t=4, m=4096 KiB,
// p=4 and a 24-byte hash, in the PHC string format.
const referenceHash = "$argon2id$v=19$m=4096,t=4,p=4$c29tZXNhbHQ$FF25czqfTuQ+3zPFCb6WuTTVBaTvszxa"

var decodeArgonCases = []struct {
	name string
	in   string
	err  string
}{
	{name: "reference", in: referenceHash},
	{name: "ours", in: "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
	{name: "empty", in: "", err: "password hash: not an argon2id PHC string"},
	{name: "bcrypt", in: "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", err: "password hash: not an argon2id PHC string"},
	{name: "argon2i", in: "$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", err: "password hash: not an argon2id PHC string"},
	{name: "old version", in: "$argon2id$v=16$m=65536,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", err: "password hash: unsupported argon2 version"},
	{name: "params order", in: "$argon2id$v=19$t=2,m=65536,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", err: "password hash: not an argon2id PHC string"},
	{name: "negative", in: "$argon2id$v=19$m=-1,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", err: "password hash: not an argon2id PHC string"},
	{name: "huge memory", in: "$argon2id$v=19$m=4294967295,t=2,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", err: "password hash: parameters m=4294967295,t=2,p=4 out of range"},
	{name: "many passes", in: "$argon2id$v=19$m=65536,t=100,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", err: "password hash: parameters m=65536,t=100,p=4 out of range"},
	{name: "zero threads", in: "$argon2id$v=19$m=65536,t=2,p=0$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", err: "password hash: parameters m=65536,t=2,p=0 out of range"},
	{name: "padded salt", in: "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ=$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", err: "password hash: bad salt"},
	{name: "short salt", in: "$argon2id$v=19$m=65536,t=2,p=4$c29t$RdescudvJCsgt3ub+b+dWRWJTmaaJObG", err: "password hash: bad salt"},
	{name: "short hash", in: "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$Rdes", err: "password hash: bad hash"},
	{name: "extra field", in: referenceHash + "$x", err: "password hash: not an argon2id PHC string"},
}

func TestDecodeArgon(t *testing.T) {
	for _, ca := range decodeArgonCases {
		t.Run(ca.name, func(t *testing.T) {
			p, err := decodeArgon(ca.in)
			if ca.err != "" {
				require.EqualError(t, err, ca.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, ca.in, encodeArgon(p))
		})
	}
}

func TestVerifyPasswordReference(t *testing.T) {
	ok, err := VerifyPassword(referenceHash, "password")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = VerifyPassword(referenceHash, "Password")
	require.NoError(t, err)
	require.False(t, ok)
	_, err = VerifyPassword("garbage", "password")
	require.EqualError(t, err, "password hash: not an argon2id PHC string")
}

func FuzzDecodeArgon(f *testing.F) {
	for _, ca := range decodeArgonCases {
		f.Add(ca.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := decodeArgon(s)
		if err != nil {
			return
		}
		// Whatever decodes is within the limits and encodes back canonically.
		require.LessOrEqual(t, p.memory, uint32(maxArgonMemory))
		require.LessOrEqual(t, p.time, uint32(maxArgonTime))
		require.LessOrEqual(t, int(p.threads), maxArgonThreads)
		p2, err := decodeArgon(encodeArgon(p))
		require.NoError(t, err)
		require.Equal(t, p, p2)
		require.True(t, strings.HasPrefix(encodeArgon(p), "$argon2id$v=19$"))
	})
}
