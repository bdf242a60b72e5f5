package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/onair/onair/internal/onair"
)

// Repair finishes the recordings of node (config node; "" on a single node) that a
// crash (kill -9, power loss) left marked active: each becomes a finished recording up
// to its last complete segment. A segment is complete once it exists in storage (Put
// renames it into place), so Repair takes the segments of the stored playlist, plus any
// complete segment written after the playlist's last rewrite, removes the temporary
// files of interrupted writes, writes the final VOD playlist and DASH manifest, and
// stores the duration and size. A recording without any segment is deleted. It returns
// how many recordings it finished.
//
// The recordings of node must not be running: Repair runs when the node starts, before
// its recorder takes new streams, or on another node once that node is dead (see
// Recorder.RepairDead). The other nodes' recordings are left alone.
func Repair(ctx context.Context, recs onair.RecordingService, st Storage, node string, logger *slog.Logger) (int, error) {
	return repair(ctx, recs, st, node, "", false, logger, nil)
}

// repair is Repair, limited to one channel's recordings unless channel is "", that also
// calls repaired with each finished recording. With keepEmpty, a recording without any
// segment is left as it is instead of deleted: the node it belongs to may only be cut off
// from the cluster, not dead, and still about to write its first segment.
func repair(ctx context.Context, recs onair.RecordingService, st Storage, node, channel string, keepEmpty bool, logger *slog.Logger,
	repaired func(id int64, w *writer, logger *slog.Logger)) (int, error) {
	if logger == nil {
		logger = slog.Default()
	}
	active, err := recs.ActiveRecordings(ctx, node)
	if err != nil {
		return 0, fmt.Errorf("repair: %w", err)
	}
	if channel != "" {
		active = slices.DeleteFunc(active, func(rec *onair.Recording) bool { return rec.Channel != channel })
	}
	n := 0
	for _, rec := range active {
		l := logger.With("channel", rec.Channel, "recording_id", rec.ID, "node", rec.Node)
		w, err := repairOne(ctx, recs, st, rec, keepEmpty)
		if errors.Is(err, errEmptyKept) {
			l.Info("empty recording left to its node")
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return n, fmt.Errorf("repair: %w", err)
			}
			l.Error("recording not repaired", "err", err)
			continue
		}
		if w != nil {
			n++
			l.Info("recording repaired")
			if repaired != nil {
				repaired(rec.ID, w, l)
			}
		} else {
			l.Info("empty recording deleted")
		}
	}
	return n, nil
}

// errEmptyKept: repairOne left a recording without segments alone (keepEmpty).
var errEmptyKept = errors.New("empty recording kept")

// repairOne finishes one crashed recording and returns its writer, or nil when it had no
// segment and was deleted.
func repairOne(ctx context.Context, recs onair.RecordingService, st Storage, rec *onair.Recording, keepEmpty bool) (*writer, error) {
	if tr, ok := st.(TempRemover); ok {
		if err := tr.RemoveTemp(ctx, rec.ID); err != nil {
			return nil, err
		}
	}
	w, lastMod, err := loadWriter(ctx, st, rec.ID)
	if err != nil {
		return nil, err
	}
	if len(w.entries) == 0 {
		if keepEmpty {
			return nil, errEmptyKept
		}
		if err := recs.PurgeRecording(ctx, rec.ID); err != nil {
			return nil, err
		}
		return nil, st.Delete(ctx, rec.ID)
	}
	if err := w.finish(ctx); err != nil {
		return nil, err
	}
	fallback := lastMod
	if fallback.IsZero() {
		fallback = rec.StartedAt.Add(w.dur)
	}
	if err := recs.FinishRecording(ctx, rec.ID, w.progress(), w.endTime(fallback)); err != nil {
		return nil, err
	}
	return w, nil
}

// loadWriter rebuilds the writer of a stored recording: the segments of its playlist
// that exist, then the complete segments stored after the playlist's last rewrite. It
// returns the modification time of the last segment.
func loadWriter(ctx context.Context, st Storage, id int64) (*writer, time.Time, error) {
	objs, err := st.List(ctx, id)
	if err != nil {
		return nil, time.Time{}, err
	}
	sizes := make(map[string]ObjectInfo, len(objs))
	inits := 0
	for _, o := range objs {
		sizes[o.Name] = o
		if k, ok := parseIndex(o.Name, "init-", ".mp4"); ok {
			inits = max(inits, k+1)
		}
	}
	w := newWriter(st, id)
	if b, err := ReadAll(ctx, st, id, metaName); err == nil {
		if m, err := parseMeta(b); err == nil {
			w.meta = *m
		}
	} else if !errors.Is(err, ErrNotFound) {
		return nil, time.Time{}, err
	}

	var entries []segmentEntry
	if b, err := ReadAll(ctx, st, id, PlaylistName); err == nil {
		// A playlist that does not parse is ignored: the segments are then read one by one.
		entries, _, _ = parsePlaylist(b)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, time.Time{}, err
	}
	var lastMod time.Time
	for _, e := range entries {
		o, ok := sizes[SegmentName(e.N)]
		if !ok || e.N != len(w.entries) || e.Init >= inits {
			break
		}
		e.Size = o.Size
		w.add(e)
		lastMod = o.ModTime
	}
	// Segments stored after the last playlist rewrite. The writer rewrites the playlist
	// before a new init segment, so only the first of them can use a newer init segment
	// than the last listed one.
	listed := len(w.entries)
	for {
		n := len(w.entries)
		o, ok := sizes[SegmentName(n)]
		if !ok {
			break
		}
		k := inits - 1
		if n > 0 && (n > listed || w.entries[n-1].Init >= k) {
			k = w.entries[n-1].Init
		}
		e, err := trailingEntry(ctx, st, w, n, k)
		if err != nil {
			break
		}
		e.Size = o.Size
		w.add(e)
		lastMod = o.ModTime
	}
	return w, lastMod, nil
}

// add appends a stored segment to the writer without writing anything.
func (w *writer) add(e segmentEntry) {
	w.entries = append(w.entries, e)
	w.bytes += e.Size
	w.dur += e.Duration
	w.pl.add(e)
}

// trailingEntry reads the timing of segment n, which uses init segment k, from its
// fragments: the span of its leading track (the first video track, else the first
// track). It follows a discontinuity when its init segment is new or its start is more
// than a frame or two away from the previous segment's end (the hub resumes a
// reconnected publisher 100 ms after the last unit).
func trailingEntry(ctx context.Context, st Storage, w *writer, n, k int) (segmentEntry, error) {
	if k < 0 || k >= len(w.meta.Inits) || len(w.meta.Inits[k].Tracks) == 0 {
		return segmentEntry{}, errors.New("no tracks known for the init segment")
	}
	tracks := w.meta.Inits[k].Tracks
	lead := 0
	for i, t := range tracks {
		if t.Video {
			lead = i
			break
		}
	}
	ts := tracks[lead].Timescale
	b, err := ReadAll(ctx, st, w.id, SegmentName(n))
	if err != nil {
		return segmentEntry{}, err
	}
	tfs, err := parseFragments(b)
	if err != nil {
		return segmentEntry{}, err
	}
	var first, end uint64
	found := false
	for _, tf := range tfs {
		if tf.trackID != uint32(lead+1) || len(tf.samples) == 0 {
			continue
		}
		last := tf.samples[len(tf.samples)-1]
		if !found || tf.baseTime < first {
			first = tf.baseTime
		}
		end = max(end, last.dts+uint64(last.dur))
		found = true
	}
	if !found || end <= first {
		return segmentEntry{}, errors.New("segment without samples of its leading track")
	}
	e := segmentEntry{
		N:        n,
		Init:     k,
		Start:    fromTicks(first, ts),
		Duration: fromTicks(end, ts) - fromTicks(first, ts),
	}
	if len(w.entries) > 0 {
		prev := w.entries[len(w.entries)-1]
		gap := e.Start - prev.end()
		e.Disc = prev.Init != k || gap > maxContinuousGap || gap < -maxContinuousGap
	}
	return e, nil
}

// maxContinuousGap is the largest jump between two segments that is not a discontinuity.
const maxContinuousGap = 50 * time.Millisecond

func fromTicks(v uint64, ts int64) time.Duration {
	return time.Duration(v/uint64(ts))*time.Second + time.Duration(v%uint64(ts))*time.Second/time.Duration(ts)
}
