package store

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/onair"
)

var parseSecretCases = []struct {
	name string
	in   []byte
	want []byte
	err  string
}{
	{name: "raw", in: bytes.Repeat([]byte{0xab}, 32), want: bytes.Repeat([]byte{0xab}, 32)},
	{name: "raw whitespace bytes", in: bytes.Repeat([]byte{' '}, 32), want: bytes.Repeat([]byte{' '}, 32)},
	{name: "hex", in: []byte(strings.Repeat("0f", 32)), want: bytes.Repeat([]byte{0x0f}, 32)},
	{name: "hex newline", in: []byte(strings.Repeat("A0", 32) + "\n"), want: bytes.Repeat([]byte{0xa0}, 32)},
	{name: "hex crlf", in: []byte(" " + strings.Repeat("01", 32) + "\r\n"), want: bytes.Repeat([]byte{0x01}, 32)},
	{name: "empty", in: nil, err: "secret must be 32 bytes or 64 hex digits, got 0 bytes"},
	{name: "short", in: []byte("abc"), err: "secret must be 32 bytes or 64 hex digits, got 3 bytes"},
	{name: "long raw", in: bytes.Repeat([]byte{1}, 33), err: "secret must be 32 bytes or 64 hex digits, got 33 bytes"},
	{name: "bad hex", in: []byte(strings.Repeat("zz", 32)), err: "secret is not valid hex"},
}

func TestParseSecret(t *testing.T) {
	for _, ca := range parseSecretCases {
		t.Run(ca.name, func(t *testing.T) {
			got, err := parseSecret(ca.in)
			if ca.err != "" {
				require.EqualError(t, err, ca.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, ca.want, got)
		})
	}
}

func FuzzParseSecret(f *testing.F) {
	for _, ca := range parseSecretCases {
		f.Add(ca.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		secret, err := parseSecret(b)
		if err != nil {
			require.Nil(t, secret)
			if len(b) >= 4 {
				require.NotContains(t, err.Error(), string(b), "error echoes the secret")
			}
			return
		}
		require.Len(t, secret, SecretSize)
	})
}

func TestReadOrCreateSecret(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data", "secret.key")

	// Created when missing, with mode 0600, in hex.
	s1, err := ReadOrCreateSecret(path)
	require.NoError(t, err)
	require.Len(t, s1, SecretSize)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, hex.EncodeToString(s1)+"\n", string(b))

	// Read back the same.
	s2, err := ReadOrCreateSecret(path)
	require.NoError(t, err)
	require.Equal(t, s1, s2)

	// Raw bytes are accepted.
	raw := filepath.Join(dir, "raw.key")
	require.NoError(t, os.WriteFile(raw, bytes.Repeat([]byte{9}, 32), 0o600))
	s3, err := ReadOrCreateSecret(raw)
	require.NoError(t, err)
	require.Equal(t, bytes.Repeat([]byte{9}, 32), s3)

	// A file others can read is refused.
	open := filepath.Join(dir, "open.key")
	require.NoError(t, os.WriteFile(open, []byte(strings.Repeat("00", 32)), 0o600))
	require.NoError(t, os.Chmod(open, 0o644))
	_, err = ReadOrCreateSecret(open)
	require.EqualError(t, err, "secret: "+open+" has mode 0644, want 0600")

	// A malformed file is refused, and its contents are not echoed.
	bad := filepath.Join(dir, "bad.key")
	require.NoError(t, os.WriteFile(bad, []byte("hunter2"), 0o600))
	_, err = ReadOrCreateSecret(bad)
	require.EqualError(t, err, "secret: "+bad+": secret must be 32 bytes or 64 hex digits, got 7 bytes")

	// A directory is refused.
	_, err = ReadOrCreateSecret(dir)
	require.Error(t, err)
}

func TestReadOrCreateSecretConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	const n = 8
	secrets := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { secrets[i], errs[i] = ReadOrCreateSecret(path) })
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, secrets[0], secrets[i])
	}
}

// TestNewStreamKeyEntropy checks the format of generated keys and that their 160 random
// bits look uniform: every bit is set in about half of the keys.
func TestNewStreamKeyEntropy(t *testing.T) {
	const n = 2000
	var ones [streamKeyEntropy * 8]int
	seen := make(map[string]bool, n)
	for range n {
		key, err := newStreamKey()
		require.NoError(t, err)
		s := key.Reveal()
		require.Len(t, s, StreamKeyLen)
		require.True(t, validStreamKeyFormat(key))
		require.False(t, seen[s])
		seen[s] = true
		raw, err := keyEncoding.DecodeString(strings.TrimPrefix(s, StreamKeyPrefix))
		require.NoError(t, err)
		require.Len(t, raw, streamKeyEntropy)
		require.GreaterOrEqual(t, len(raw)*8, 128)
		for i, c := range raw {
			for j := range 8 {
				ones[i*8+j] += int(c>>j) & 1
			}
		}
	}
	// The count of each bit is binomial(2000, 0.5): sd 22, so ±200 is 9 sd.
	for i, c := range ones {
		require.InDelta(t, n/2, c, 200, "bit %d", i)
	}
}

func TestValidStreamKeyFormat(t *testing.T) {
	cases := []struct {
		key string
		ok  bool
	}{
		{key: "live_" + strings.Repeat("a", 32), ok: true},
		{key: "live_" + strings.Repeat("7", 32), ok: true},
		{key: "live_" + strings.Repeat("a", 31)},
		{key: "live_" + strings.Repeat("a", 33)},
		{key: "live_" + strings.Repeat("1", 32)},
		{key: "live_" + strings.Repeat("A", 32)},
		{key: "lvie_" + strings.Repeat("a", 32)},
		{key: ""},
	}
	for _, ca := range cases {
		require.Equal(t, ca.ok, validStreamKeyFormat(onair.StreamKey(ca.key)), ca.key)
	}
}

func TestSealOpenStreamKey(t *testing.T) {
	aead, err := newKeyCipher(bytes.Repeat([]byte{1}, SecretSize))
	require.NoError(t, err)
	db := &DB{aead: aead}
	key, err := newStreamKey()
	require.NoError(t, err)
	enc, err := db.sealStreamKey(5, key)
	require.NoError(t, err)
	require.Equal(t, byte(keyEncVersion), enc[0])
	require.False(t, bytes.Contains(enc, []byte(key.Reveal())))

	got, err := db.openStreamKey(5, enc)
	require.NoError(t, err)
	require.Equal(t, key.Reveal(), got.Reveal())

	// Two seals of the same key differ (random nonce).
	enc2, err := db.sealStreamKey(5, key)
	require.NoError(t, err)
	require.NotEqual(t, enc, enc2)

	_, err = db.openStreamKey(6, enc)
	require.EqualError(t, err, "decrypt stream key: authentication failed (wrong secret?)")
	_, err = db.openStreamKey(5, enc[:10])
	require.EqualError(t, err, "decrypt stream key: malformed ciphertext")
	bad := bytes.Clone(enc)
	bad[0] = 2
	_, err = db.openStreamKey(5, bad)
	require.EqualError(t, err, "decrypt stream key: malformed ciphertext")
	bad = bytes.Clone(enc)
	bad[len(bad)-1] ^= 1
	_, err = db.openStreamKey(5, bad)
	require.EqualError(t, err, "decrypt stream key: authentication failed (wrong secret?)")
}
