package store

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters of new password hashes: the OWASP recommendation of 19 MiB of
// memory, 2 passes and 1 lane, a 16-byte salt and a 32-byte hash.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
)

// Limits on the parameters that VerifyPassword accepts, so that a corrupted or hostile
// hash cannot make it allocate or compute without bound.
const (
	maxArgonMemory  = 1 << 20 // KiB (1 GiB)
	maxArgonTime    = 16
	maxArgonThreads = 64
	minArgonSaltLen = 8
	maxArgonSaltLen = 64
	minArgonKeyLen  = 16
	maxArgonKeyLen  = 128
)

// argonParams are the parameters of one encoded hash.
type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// argonCost is the work factor of new hashes.
type argonCost struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
}

// defaultArgonCost is the cost of new hashes (see the constants above).
var defaultArgonCost = argonCost{memory: argonMemory, time: argonTime, threads: argonThreads}

// passwordCost is the cost HashPassword uses: defaultArgonCost. Only this package's tests
// lower it, to keep the suite fast.
var passwordCost = defaultArgonCost

// HashPassword hashes password with argon2id and a random salt, and returns it in the PHC
// string format: $argon2id$v=19$m=19456,t=2,p=1$SALT$HASH (unpadded standard base64).
func HashPassword(password string) (string, error) {
	return hashPassword(password, passwordCost)
}

func hashPassword(password string, c argonCost) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, c.time, c.memory, c.threads, argonKeyLen)
	return encodeArgon(argonParams{
		memory: c.memory, time: c.time, threads: c.threads, salt: salt, key: key,
	}), nil
}

// VerifyPassword reports whether password matches the hash encoded by HashPassword,
// comparing in constant time. It fails only when encoded is malformed or out of limits.
func VerifyPassword(encoded, password string) (bool, error) {
	p, err := decodeArgon(encoded)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1, nil
}

// dummyHashes holds, by argonCost, a hash that Authenticate verifies against when a user
// is missing, so that a login for an unknown username takes as long as one for a known
// username.
var dummyHashes sync.Map

// dummyPasswordHash returns the dummy hash of the current cost.
func dummyPasswordHash() string {
	c := passwordCost
	if h, ok := dummyHashes.Load(c); ok {
		return h.(string)
	}
	h, _ := hashPassword("onair dummy password", c)
	v, _ := dummyHashes.LoadOrStore(c, h)
	return v.(string)
}

func encodeArgon(p argonParams) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.memory, p.time, p.threads,
		base64.RawStdEncoding.EncodeToString(p.salt), base64.RawStdEncoding.EncodeToString(p.key))
}

var errBadHash = errors.New("password hash: not an argon2id PHC string")

// decodeArgon parses a PHC string made by encodeArgon and checks its parameters against
// the limits. Its errors never contain the string.
func decodeArgon(encoded string) (argonParams, error) {
	var p argonParams
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, errBadHash
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, errors.New("password hash: unsupported argon2 version")
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return p, errBadHash
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		s, ok := strings.CutPrefix(params[i], name)
		if !ok {
			return p, errBadHash
		}
		v, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return p, errBadHash
		}
		vals[i] = v
	}
	m, t, th := vals[0], vals[1], vals[2]
	if th < 1 || th > maxArgonThreads || t < 1 || t > maxArgonTime || m < 8*th || m > maxArgonMemory {
		return p, fmt.Errorf("password hash: parameters m=%d,t=%d,p=%d out of range", m, t, th)
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < minArgonSaltLen || len(salt) > maxArgonSaltLen {
		return p, errors.New("password hash: bad salt")
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil || len(key) < minArgonKeyLen || len(key) > maxArgonKeyLen {
		return p, errors.New("password hash: bad hash")
	}
	return argonParams{memory: uint32(m), time: uint32(t), threads: uint8(th), salt: salt, key: key}, nil
}
