package store

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/onair/onair/internal/onair"
)

// SecretSize is the size of DB.Secret in bytes.
const SecretSize = 32

// Stream key format: StreamKeyPrefix and then the lowercase unpadded base32 of
// streamKeyEntropy random bytes (160 bits), StreamKeyLen characters in all.
const (
	StreamKeyPrefix  = "live_"
	streamKeyEntropy = 20
	StreamKeyLen     = len(StreamKeyPrefix) + (streamKeyEntropy*8+4)/5
)

// keyEncVersion is the first byte of key_enc: the format of what follows
// (nonce, then AES-256-GCM ciphertext and tag).
const keyEncVersion = 1

// keyHKDFInfo separates the stream key encryption key from other keys that may later be
// derived from the same secret.
const keyHKDFInfo = "onair stream key encryption v1"

var keyEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ReadOrCreateSecret reads a secret of SecretSize bytes from path, written either raw or
// in hex (surrounding whitespace ignored). When the file does not exist, it creates it
// with mode 0600 holding a new random secret in hex. A file that the group or others can
// access is refused.
func ReadOrCreateSecret(path string) ([]byte, error) {
	secret, err := readSecret(path)
	if errors.Is(err, fs.ErrNotExist) {
		secret, err = createSecret(path)
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first.
			secret, err = readSecret(path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	return secret, nil
}

func readSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o, want 0600", path, perm)
	}
	buf, err := io.ReadAll(io.LimitReader(f, 4*SecretSize))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	secret, err := parseSecret(buf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return secret, nil
}

// parseSecret decodes the contents of a secret file: SecretSize raw bytes, or their hex
// encoding with optional surrounding whitespace.
func parseSecret(b []byte) ([]byte, error) {
	if len(b) == SecretSize {
		return bytes.Clone(b), nil
	}
	t := bytes.TrimSpace(b)
	if len(t) != 2*SecretSize {
		return nil, fmt.Errorf("secret must be %d bytes or %d hex digits, got %d bytes", SecretSize, 2*SecretSize, len(b))
	}
	secret := make([]byte, SecretSize)
	if _, err := hex.Decode(secret, t); err != nil {
		return nil, errors.New("secret is not valid hex")
	}
	return secret, nil
}

// createSecret writes a new secret to path, failing with fs.ErrExist when path exists.
// The secret is written to a temporary file that is then hard-linked to path, so no
// reader ever sees a partial file and of two racing processes one wins.
func createSecret(path string) ([]byte, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	secret := make([]byte, SecretSize)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, ".secret-*.tmp")
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	_, err = f.WriteString(hex.EncodeToString(secret) + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Link(tmp, path); err != nil {
		return nil, err
	}
	return secret, nil
}

// newKeyCipher derives the stream key encryption key from secret.
func newKeyCipher(secret []byte) (cipher.AEAD, error) {
	if len(secret) != SecretSize {
		return nil, fmt.Errorf("secret must be %d bytes, got %d", SecretSize, len(secret))
	}
	key, err := hkdf.Key(sha256.New, secret, nil, keyHKDFInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// newStreamKey returns a new random stream key.
func newStreamKey() (onair.StreamKey, error) {
	b := make([]byte, streamKeyEntropy)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("stream key: %w", err)
	}
	return onair.StreamKey(StreamKeyPrefix + keyEncoding.EncodeToString(b)), nil
}

// hashStreamKey returns the hex SHA-256 of key. The key has 160 bits of entropy, so a
// fast hash is enough.
func hashStreamKey(key onair.StreamKey) string {
	sum := sha256.Sum256([]byte(key.Reveal()))
	return hex.EncodeToString(sum[:])
}

// keyAAD binds an encrypted key to its channel, so a ciphertext copied to another
// channel's row does not decrypt.
func keyAAD(channelID int64) []byte {
	return binary.BigEndian.AppendUint64([]byte("channel:"), uint64(channelID))
}

// sealStreamKey encrypts key for storage in the row of channelID.
func (db *DB) sealStreamKey(channelID int64, key onair.StreamKey) ([]byte, error) {
	out := make([]byte, 1+db.aead.NonceSize(), 1+db.aead.NonceSize()+len(key)+db.aead.Overhead())
	out[0] = keyEncVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return db.aead.Seal(out, out[1:], []byte(key.Reveal()), keyAAD(channelID)), nil
}

// openStreamKey decrypts a key stored in the row of channelID. Its errors never contain
// key material.
func (db *DB) openStreamKey(channelID int64, enc []byte) (onair.StreamKey, error) {
	ns := db.aead.NonceSize()
	if len(enc) < 1+ns+db.aead.Overhead() || enc[0] != keyEncVersion {
		return "", errors.New("decrypt stream key: malformed ciphertext")
	}
	plain, err := db.aead.Open(nil, enc[1:1+ns], enc[1+ns:], keyAAD(channelID))
	if err != nil {
		return "", errors.New("decrypt stream key: authentication failed (wrong secret?)")
	}
	return onair.StreamKey(plain), nil
}

// validStreamKeyFormat reports whether key looks like a key newStreamKey makes.
func validStreamKeyFormat(key onair.StreamKey) bool {
	s := key.Reveal()
	if len(s) != StreamKeyLen || !strings.HasPrefix(s, StreamKeyPrefix) {
		return false
	}
	for _, c := range s[len(StreamKeyPrefix):] {
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}
