package record

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/onair/onair/internal/onair"
	"github.com/onair/onair/internal/unit"
)

// Playlist rewrites: the stored playlist is rewritten after every segment while it is
// small, and then once the media written since the last rewrite is rewriteFactor times
// its size, so that rewrites of a long recording's playlist (which grows with each
// segment) cost at most about 1/rewriteFactor of the media's bytes: a day-long
// recording's playlist is 1.7 MB. Segments written after the last rewrite are found
// by Repair after a crash; the running recording's playlist is served from memory
// (Recorder.Playlist). A discontinuity or a new init segment forces a rewrite, so that
// Repair never has to guess them.
const rewriteFactor = 16

// rewriteAlways is the playlist size up to which it is rewritten after every segment
// (a variable for the tests).
var rewriteAlways = 64 << 10

// writer writes one recording to a Storage: init segments, segments, and the
// playlist, atomically, so that what is stored is always a playable recording up to its
// last complete segment.
type writer struct {
	st      Storage
	id      int64
	entries []segmentEntry
	pl      *playlist
	meta    recordingMeta
	bytes   int64
	dur     time.Duration
	since   int64 // media bytes since the stored playlist was rewritten

	// live is the current EVENT playlist, for readers on other goroutines.
	live atomic.Pointer[[]byte]
}

func newWriter(st Storage, id int64) *writer {
	return &writer{st: st, id: id, pl: newPlaylist(), meta: recordingMeta{Version: metaVersion, Inits: []initMeta{}}}
}

// writeInit stores a new init segment and the tracks it describes, and returns its number.
func (w *writer) writeInit(ctx context.Context, data []byte, tracks []*unit.Track) (int, error) {
	if err := w.flush(ctx); err != nil {
		return 0, err
	}
	k := len(w.meta.Inits)
	if err := w.put(ctx, InitName(k), bytes.NewReader(data)); err != nil {
		return 0, err
	}
	in := initMeta{Tracks: make([]trackMeta, 0, len(tracks))}
	for _, t := range tracks {
		if t != nil {
			in.Tracks = append(in.Tracks, trackMetaOf(t))
		}
	}
	w.meta.Inits = append(w.meta.Inits, in)
	if err := w.writeMeta(ctx); err != nil {
		w.meta.Inits = w.meta.Inits[:k]
		return 0, err
	}
	return k, nil
}

func (w *writer) writeMeta(ctx context.Context) error {
	b, err := json.Marshal(&w.meta)
	if err != nil {
		return err
	}
	return w.put(ctx, metaName, bytes.NewReader(b))
}

func (w *writer) put(ctx context.Context, name string, r io.Reader) error {
	if err := w.st.Put(ctx, w.id, name, r); err != nil {
		return err
	}
	return nil
}

// writeSegment stores segment e (its N is set here) with the bytes of r, then the
// playlist that lists it.
func (w *writer) writeSegment(ctx context.Context, e segmentEntry, r io.Reader) error {
	e.N = len(w.entries)
	force := len(w.entries) == 0 || e.Disc || e.Init != w.entries[len(w.entries)-1].Init
	if force {
		if err := w.flush(ctx); err != nil {
			return err
		}
	}
	if err := w.put(ctx, SegmentName(e.N), r); err != nil {
		return err
	}
	w.entries = append(w.entries, e)
	w.bytes += e.Size
	w.dur += e.Duration
	w.since += e.Size
	w.pl.add(e)
	b := w.pl.render(false)
	w.live.Store(&b)
	if force || len(b) <= rewriteAlways || w.since >= rewriteFactor*int64(len(b)) {
		if err := w.put(ctx, PlaylistName, bytes.NewReader(b)); err != nil {
			return fmt.Errorf("playlist: %w", err)
		}
		w.since = 0
	}
	return nil
}

// flush rewrites the stored playlist if segments were written since its last rewrite:
// before a new init segment or a discontinuity, so that Repair finds at most one
// unlisted segment after either (see trailingEntry).
func (w *writer) flush(ctx context.Context) error {
	if w.since == 0 || len(w.entries) == 0 {
		return nil
	}
	if err := w.put(ctx, PlaylistName, bytes.NewReader(w.pl.render(false))); err != nil {
		return fmt.Errorf("playlist: %w", err)
	}
	w.since = 0
	return nil
}

// livePlaylist returns the current EVENT playlist (nil before the first segment). It
// is safe for concurrent use.
func (w *writer) livePlaylist() []byte {
	if b := w.live.Load(); b != nil {
		return *b
	}
	return nil
}

// finish writes the VOD playlist and the DASH manifest.
func (w *writer) finish(ctx context.Context) error {
	if len(w.entries) == 0 {
		return nil
	}
	if err := w.put(ctx, PlaylistName, bytes.NewReader(w.pl.render(true))); err != nil {
		return fmt.Errorf("final playlist: %w", err)
	}
	if err := w.put(ctx, ManifestName, bytes.NewReader(renderMPD(w.entries, &w.meta))); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}

func (w *writer) progress() onair.RecordingProgress {
	return onair.RecordingProgress{Duration: w.dur, Bytes: w.bytes, Segments: len(w.entries)}
}

// endTime returns the wall-clock end of the recording: the wall time of its last
// session plus what followed, or fallback.
func (w *writer) endTime(fallback time.Time) time.Time {
	var wall time.Time
	var from time.Duration
	for _, e := range w.entries {
		if !e.Wall.IsZero() {
			wall, from = e.Wall, e.Start
		}
	}
	if wall.IsZero() || len(w.entries) == 0 {
		return fallback
	}
	return wall.Add(w.entries[len(w.entries)-1].end() - from)
}
