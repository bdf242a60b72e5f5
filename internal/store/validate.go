package store

import (
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/onair/onair/internal/onair"
)

// Limits of the texts the store keeps (besides those in package onair) and of lists.
const (
	maxTagLen         = 30
	maxSiteNameLen    = 60
	maxTokenNameLen   = 100
	maxNotifyKindLen  = 16
	maxNotifyTextLen  = 1000
	maxNotifyChannel  = 64
	defaultListLimit  = 50
	maxListLimit      = 1000
	notifyInsertBatch = 200
)

var tagRE = regexp.MustCompile(`^[a-z0-9-]{1,30}$`)

// cleanText trims s and checks it: valid UTF-8 (PostgreSQL and MySQL refuse anything
// else), no control characters but tab and newline when multiline (PostgreSQL refuses NUL),
// not empty when required, and at most max characters. what names the field in messages
// ("Title"). The text is otherwise stored verbatim: escaping is the web's job.
func cleanText(what, s string, max int, multiline, required bool) (string, error) {
	if !utf8.ValidString(s) {
		return "", onair.Errorf(onair.EINVALID, "%s must be valid UTF-8 text.", what)
	}
	s = strings.TrimSpace(s)
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			if multiline && (r == '\n' || r == '\t' || r == '\r') {
				continue
			}
			return "", onair.Errorf(onair.EINVALID, "%s must not contain control characters.", what)
		}
	}
	if required && s == "" {
		return "", onair.Errorf(onair.EINVALID, "%s must not be empty.", what)
	}
	if utf8.RuneCountInString(s) > max {
		return "", onair.Errorf(onair.EINVALID, "%s must be at most %d characters.", what, max)
	}
	return s, nil
}

// normalizeTag lowercases and trims a tag, and reports whether the result is valid:
// 1 to 30 characters of a-z, 0-9 and -.
func normalizeTag(tag string) (string, bool) {
	t := strings.ToLower(strings.TrimSpace(tag))
	return t, tagRE.MatchString(t)
}

// normalizeTags normalises tags: lowercased, trimmed, empty ones dropped, duplicates
// removed (the first place kept). It fails with EINVALID on a tag that is not 1 to 30
// characters of a-z, 0-9 and -, or when more than onair.MaxTags remain.
func normalizeTags(tags []string) ([]string, error) {
	out := make([]string, 0, len(tags))
	for _, tag := range tags {
		t, ok := normalizeTag(tag)
		if t == "" {
			continue
		}
		if !ok {
			shown := t
			if utf8.RuneCountInString(shown) > 40 {
				shown = string([]rune(shown)[:40]) + "…"
			}
			return nil, onair.Errorf(onair.EINVALID,
				"Tag %q is not valid: use 1 to %d characters of a-z, 0-9 and -.", shown, maxTagLen)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) > onair.MaxTags {
		return nil, onair.Errorf(onair.EINVALID, "A channel can have at most %d tags.", onair.MaxTags)
	}
	return out, nil
}

// clampLimit returns limit, or defaultListLimit when it is not positive, at most
// maxListLimit.
func clampLimit(limit int) int {
	switch {
	case limit <= 0:
		return defaultListLimit
	case limit > maxListLimit:
		return maxListLimit
	}
	return limit
}

// Errors about the actor, shared by the services.
func errSignIn() error { return onair.Errorf(onair.EUNAUTHORIZED, "You must be signed in.") }
func errBanned() error { return onair.Errorf(onair.EFORBIDDEN, "This account is banned.") }
func errAdminOnly() error {
	return onair.Errorf(onair.EFORBIDDEN, "Only site admins can do that.")
}

// requireActor checks that actor is signed in and not banned.
func requireActor(actor *onair.User) error {
	if actor == nil {
		return errSignIn()
	}
	if actor.Banned {
		return errBanned()
	}
	return nil
}

// requireAdmin checks that actor is a signed-in admin who is not banned.
func requireAdmin(actor *onair.User) error {
	if err := requireActor(actor); err != nil {
		return err
	}
	if !actor.IsAdmin {
		return errAdminOnly()
	}
	return nil
}
