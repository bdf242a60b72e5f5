package record

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/onair/onair/internal/cmafstream"
)

// errStop ends a recording before its stream ended; reason is shown to the owner.
type errStop struct {
	reason string
	err    error
}

func (e *errStop) Error() string {
	if e.err != nil {
		return e.reason + ": " + e.err.Error()
	}
	return e.reason
}

func (e *errStop) Unwrap() error { return e.err }

// recording is one running recording: the goroutine of Recorder.record owns it.
type recording struct {
	r       *Recorder
	id      int64
	channel string
	stream  *cmafstream.Stream
	sub     *cmafstream.Subscription
	w       *writer
	logger  *slog.Logger

	lastSeq      int64 // Seq of the last segment written, -1 before the first
	lastDropped  uint64
	init         *cmafstream.Init
	initK        int
	lastProgress time.Time
}

// run writes the stream's segments until it ends (with its last segment), the recorder
// closes, or a write fails. It returns nil when the broadcast ended normally.
func (rg *recording) run() error {
	r := rg.r
	// Writes outlive Close, so that the last segments and the final playlist are stored.
	wctx := context.WithoutCancel(r.ctx)
	st := rg.stream.State()
	// Segments finished before the subscription: the start of the broadcast.
	for _, sg := range st.Segments {
		if err := rg.write(wctx, sg); err != nil {
			return err
		}
	}
	var deadline <-chan time.Time
	var timer *time.Timer
	startDeadline := func() {
		if timer == nil {
			timer = time.NewTimer(r.EndTimeout)
			deadline = timer.C
		}
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	done := r.ctx.Done()
	for {
		if st.Ended && rg.hasLast(st) {
			return nil
		}
		select {
		case sg, ok := <-rg.sub.Segments():
			if !ok {
				return nil
			}
			if err := rg.write(wctx, sg); err != nil {
				return err
			}
		case <-st.Changed:
			st = rg.stream.State()
			if st.Ended {
				startDeadline()
			}
		case <-done:
			done = nil
			startDeadline()
		case <-deadline:
			rg.drain(wctx)
			return nil
		}
	}
}

// hasLast reports whether the last segment of an ended stream was written.
func (rg *recording) hasLast(st *cmafstream.State) bool {
	last := st.Last()
	return last == nil || rg.lastSeq >= int64(last.Seq)
}

// drain writes the segments already queued.
func (rg *recording) drain(ctx context.Context) {
	for {
		select {
		case sg, ok := <-rg.sub.Segments():
			if !ok {
				return
			}
			if err := rg.write(ctx, sg); err != nil {
				return
			}
		default:
			return
		}
	}
}

// write stores one segment, with its init segment when new.
func (rg *recording) write(ctx context.Context, sg *cmafstream.Segment) error {
	r := rg.r
	if int64(sg.Seq) <= rg.lastSeq {
		return nil // already written (the backlog overlaps the subscription)
	}
	first := rg.lastSeq < 0
	disc := sg.Discontinuity
	if !first && int64(sg.Seq) != rg.lastSeq+1 {
		disc = true
	}
	if d := rg.sub.Dropped(); d > rg.lastDropped {
		rg.logger.Warn("segments dropped: storage too slow", "dropped", d-rg.lastDropped)
		rg.lastDropped = d
		disc = true
	}
	if r.MaxRecordingBytes > 0 && rg.w.bytes+int64(sg.Size) > r.MaxRecordingBytes {
		return &errStop{reason: ReasonSizeLimit}
	}
	if r.MinFreeBytes > 0 {
		if free := r.freeSpace(ctx); free >= 0 && free-int64(sg.Size) < r.MinFreeBytes {
			return &errStop{reason: ReasonDiskFull}
		}
	}
	if sg.Init != rg.init {
		k, err := rg.w.writeInit(ctx, sg.Init.Data, sg.Init.Tracks)
		if err != nil {
			return storageStop(err)
		}
		if rg.init != nil {
			disc = true
		}
		rg.init, rg.initK = sg.Init, k
	}
	e := segmentEntry{
		Init:     rg.initK,
		Start:    sg.Start,
		Duration: sg.Duration,
		Size:     int64(sg.Size),
		Disc:     disc && !first,
		Wall:     sg.Wall,
	}
	if err := rg.w.writeSegment(ctx, e, chunkReader(sg.Chunks())); err != nil {
		return storageStop(err)
	}
	rg.lastSeq = int64(sg.Seq)
	if r.MinFreeBytes > 0 {
		r.invalidateFree()
	}
	if now := r.Now(); now.Sub(rg.lastProgress) >= r.ProgressInterval {
		rg.lastProgress = now
		dctx, cancel := context.WithTimeout(ctx, dbTimeout)
		if err := r.Recordings.UpdateRecordingProgress(dctx, rg.id, rg.w.progress()); err != nil {
			rg.logger.Warn("recording progress not stored", "err", err)
		}
		cancel()
	}
	return nil
}

func storageStop(err error) error {
	if errors.Is(err, ErrFull) {
		return &errStop{reason: ReasonDiskFull, err: err}
	}
	return &errStop{reason: ReasonStorageError, err: err}
}

// end finishes the recording after run returned err: the final playlist and manifest,
// and the row's final state. A recording without any segment is deleted.
func (rg *recording) end(err error) {
	r := rg.r
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), dbTimeout)
	defer cancel()
	p := rg.w.progress()
	endedAt := rg.w.endTime(r.Now())
	var stop *errStop
	if errors.As(err, &stop) {
		if ferr := rg.w.finish(ctx); ferr != nil {
			rg.logger.Warn("final playlist not stored", "err", ferr)
		}
		r.queuePoster(rg)
		if dberr := r.Recordings.FailRecording(ctx, rg.id, p, endedAt, stop.reason); dberr != nil {
			rg.logger.Error("recording state not stored", "err", dberr)
		}
		rg.logger.Warn("recording stopped", "reason", stop.reason, "err", stop.err,
			"segments", p.Segments, "bytes", p.Bytes)
		return
	}
	if p.Segments == 0 {
		if dberr := r.Recordings.PurgeRecording(ctx, rg.id); dberr != nil {
			rg.logger.Error("empty recording not deleted", "err", dberr)
		}
		if serr := r.Storage.Delete(ctx, rg.id); serr != nil {
			rg.logger.Warn("empty recording files not deleted", "err", serr)
		}
		rg.logger.Info("empty recording deleted")
		return
	}
	if ferr := rg.w.finish(ctx); ferr != nil {
		// The stored playlist still plays up to the last segment; it is served as ended.
		rg.logger.Warn("final playlist not stored", "err", ferr)
	}
	r.queuePoster(rg)
	if dberr := r.Recordings.FinishRecording(ctx, rg.id, p, endedAt); dberr != nil {
		rg.logger.Error("recording state not stored", "err", dberr)
	}
	rg.logger.Info("recording finished", "segments", p.Segments, "bytes", p.Bytes,
		"duration", p.Duration.Round(time.Millisecond).String(), "dropped", rg.sub.Dropped())
}

// chunksReader reads parts one after another; io.Copy writes each part with one call.
type chunksReader struct {
	chunks [][]byte
}

func chunkReader(chunks [][]byte) *chunksReader { return &chunksReader{chunks: chunks} }

func (c *chunksReader) Read(p []byte) (int, error) {
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	return n, nil
}

// WriteTo implements io.WriterTo.
func (c *chunksReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for len(c.chunks) > 0 {
		n, err := w.Write(c.chunks[0])
		total += int64(n)
		c.chunks[0] = c.chunks[0][n:]
		if err != nil {
			return total, err
		}
		if len(c.chunks[0]) == 0 {
			c.chunks = c.chunks[1:]
		}
	}
	return total, nil
}
