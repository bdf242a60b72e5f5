package record

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"time"

	"github.com/onair/onair/internal/ffmpeg"
)

// PosterName is the name of a recording's poster: one JPEG frame, 320 pixels wide.
const PosterName = "poster.jpg"

// Poster extraction limits.
const (
	posterTimeout  = 10 * time.Second
	posterQueue    = 16
	maxPosterBytes = 4 << 20
	posterWidth    = 320
)

// posterJob asks for the poster of a recording from its first segment.
type posterJob struct {
	id   int64
	init string
	seg  string
}

// startPosters looks up ffmpeg and starts the goroutine that makes posters, one at a
// time, off the media path. Without ffmpeg, recordings get no poster.
func (r *Recorder) startPosters() {
	name := r.FFmpeg
	if name == "" {
		name = "ffmpeg"
	}
	path, err := exec.LookPath(name)
	if err != nil {
		r.Logger.Info("ffmpeg not found, recordings get no poster", "ffmpeg", name)
		return
	}
	r.ffmpegPath = path
	r.posters = make(chan posterJob, posterQueue)
	r.posterDone = make(chan struct{})
	go r.runPosters()
}

// closePosters stops taking jobs and waits for the queued ones (each bounded by
// posterTimeout). It runs after every recording ended.
func (r *Recorder) closePosters() {
	if r.posters == nil {
		return
	}
	close(r.posters)
	<-r.posterDone
}

// queuePoster asks for the poster of a recording that has segments and video. It never
// blocks: when the queue is full, the recording gets no poster.
func (r *Recorder) queuePoster(rg *recording) {
	r.queuePosterOf(rg.id, rg.w, rg.logger)
}

func (r *Recorder) queuePosterOf(id int64, w *writer, logger *slog.Logger) {
	if r.posters == nil || len(w.entries) == 0 {
		return
	}
	e := w.entries[0]
	if e.Init < 0 || e.Init >= len(w.meta.Inits) || !hasVideo(w.meta.Inits[e.Init]) {
		return
	}
	select {
	case r.posters <- posterJob{id: id, init: InitName(e.Init), seg: SegmentName(e.N)}:
	default:
		logger.Warn("poster skipped: queue full")
	}
}

func hasVideo(in initMeta) bool {
	for _, t := range in.Tracks {
		if t.Video {
			return true
		}
	}
	return false
}

func (r *Recorder) runPosters() {
	defer close(r.posterDone)
	for job := range r.posters {
		ctx, cancel := context.WithTimeout(context.Background(), posterTimeout)
		err := r.makePoster(ctx, job)
		cancel()
		if err != nil {
			r.Logger.Warn("poster not stored", "recording_id", job.id, "err", err)
		}
	}
}

// makePoster extracts one frame of the job's segment with ffmpeg and stores it.
func (r *Recorder) makePoster(ctx context.Context, job posterJob) error {
	init, err := ReadAll(ctx, r.Storage, job.id, job.init)
	if err != nil {
		return fmt.Errorf("poster: %w", err)
	}
	seg, err := ReadAll(ctx, r.Storage, job.id, job.seg)
	if err != nil {
		return fmt.Errorf("poster: %w", err)
	}
	img, err := extractPoster(ctx, r.ffmpegPath, io.MultiReader(bytes.NewReader(init), bytes.NewReader(seg)))
	if err != nil {
		return err
	}
	if err := r.Storage.Put(ctx, job.id, PosterName, bytes.NewReader(img)); err != nil {
		return fmt.Errorf("poster: %w", err)
	}
	if r.MinFreeBytes > 0 {
		r.invalidateFree()
	}
	return nil
}

// extractPoster decodes the first video frame of the fragmented MP4 in and returns it as
// a JPEG, posterWidth pixels wide.
func extractPoster(ctx context.Context, path string, in io.Reader) ([]byte, error) {
	img, err := ffmpeg.Frame(ctx, path, "", in, posterWidth, maxPosterBytes)
	if err != nil {
		return nil, fmt.Errorf("poster: %w", err)
	}
	return img, nil
}
