package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Rung is one rendition of the transcoding ladder, written "720p", "480p@1200k" or
// "audio@96k": a video height in lines (the width follows the source's aspect ratio) or
// audio only, with an optional bit rate in kbit/s (0: a default from the size).
type Rung struct {
	Name   string // "720p", "audio"
	Height int    // 0 for audio only
	Kbps   int    // 0: the default
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Rung) UnmarshalText(b []byte) error {
	v, err := ParseRung(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (r Rung) MarshalText() ([]byte, error) {
	if r.Kbps > 0 {
		return []byte(r.Name + "@" + strconv.Itoa(r.Kbps) + "k"), nil
	}
	return []byte(r.Name), nil
}

// ParseRung parses "720p", "480p@1200k", "audio" or "audio@96k". Heights are even, from
// 144 to 2160 lines; bit rates from 16 to 50000 kbit/s.
func ParseRung(s string) (Rung, error) {
	name, rate, hasRate := strings.Cut(strings.TrimSpace(s), "@")
	var r Rung
	if name == "audio" {
		r.Name = name
	} else {
		h, ok := strings.CutSuffix(name, "p")
		n, err := strconv.Atoi(h)
		if !ok || err != nil || h != strconv.Itoa(n) || n < 144 || n > 2160 || n%2 != 0 {
			return r, fmt.Errorf("%q is not a rendition like 720p, 480p@1200k or audio (heights: even, 144 to 2160)", s)
		}
		r.Name, r.Height = name, n
	}
	if hasRate {
		k, ok := strings.CutSuffix(rate, "k")
		n, err := strconv.Atoi(k)
		if !ok || err != nil || k != strconv.Itoa(n) || n < 16 || n > 50000 {
			return r, fmt.Errorf("%q: bit rate %q is not like 1200k (16k to 50000k)", s, rate)
		}
		r.Kbps = n
	}
	return r, nil
}
