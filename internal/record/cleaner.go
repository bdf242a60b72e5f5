package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/onair/onair/internal/onair"
)

// DefaultCleanInterval is the default of Cleaner.Interval.
const DefaultCleanInterval = 15 * time.Minute

// Cleaner applies the retention limits: it deletes finished (and failed) recordings,
// oldest first, that are older than MaxAge, that put their owner over UserQuota, or the
// site over MaxBytes. Recordings being written count towards the sizes but are never
// deleted. It also deletes stored media that no recording row owns any more (a deleted
// account, a crash between deleting a row and its files). It runs at Start and every
// Interval.
type Cleaner struct {
	// Recordings lists and deletes the recordings' rows. Required.
	Recordings onair.RecordingService

	// Storage holds the recordings' media. Required.
	Storage Storage

	// MaxAge deletes recordings that ended longer ago. Default: 0, no limit.
	MaxAge time.Duration

	// MaxBytes bounds the bytes of all recordings of the site. Default: 0, no limit.
	MaxBytes int64

	// UserQuota bounds the bytes of the recordings of each user. Default: 0, no limit.
	UserQuota int64

	// Interval is the time between two runs. Default: DefaultCleanInterval.
	Interval time.Duration

	// Logger receives a line per deleted recording. Default: slog.Default().
	Logger *slog.Logger

	// Now returns the current time. Default: time.Now.
	Now func() time.Time

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	trigger chan struct{}
	runMu   sync.Mutex
}

// Start applies the defaults and starts the periodic runs; the first one starts at once.
func (c *Cleaner) Start() error {
	switch {
	case c.Recordings == nil:
		return errors.New("cleaner: recording service is required")
	case c.Storage == nil:
		return errors.New("cleaner: storage is required")
	case c.MaxAge < 0 || c.MaxBytes < 0 || c.UserQuota < 0 || c.Interval < 0:
		return errors.New("cleaner: limits must not be negative")
	}
	if c.Interval == 0 {
		c.Interval = DefaultCleanInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.trigger = make(chan struct{}, 1)
	c.wg.Add(1)
	go c.run()
	return nil
}

// Close stops the runs and waits for the current one.
func (c *Cleaner) Close() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	c.wg.Wait()
}

// Trigger asks for a run soon (after a recording stopped on a full disk, for example).
// It never blocks.
func (c *Cleaner) Trigger() {
	if c.trigger == nil {
		return
	}
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

func (c *Cleaner) run() {
	defer c.wg.Done()
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		if _, err := c.RunOnce(c.ctx); err != nil && c.ctx.Err() == nil {
			c.Logger.Warn("retention run failed", "err", err)
		}
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		case <-c.trigger:
		}
	}
}

// CleanResult counts what a run deleted.
type CleanResult struct {
	Deleted int   // recordings
	Bytes   int64 // of the deleted recordings
	Orphans int   // stored recordings without a row
}

// RunOnce applies the limits once (see Cleaner), oldest first.
func (c *Cleaner) RunOnce(ctx context.Context) (CleanResult, error) {
	c.runMu.Lock()
	defer c.runMu.Unlock()
	var res CleanResult
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	logger := c.Logger
	if logger == nil {
		logger = slog.Default()
	}
	// Stored ids first: a row is created before its media, so a stored recording whose
	// row is missing in the list read after is an orphan.
	stored, err := c.Storage.Recordings(ctx)
	if err != nil {
		return res, fmt.Errorf("list stored recordings: %w", err)
	}
	all, err := c.Recordings.AllRecordings(ctx)
	if err != nil {
		return res, err
	}
	known := make(map[int64]bool, len(all))
	var site int64
	perUser := make(map[int64]int64)
	for _, r := range all {
		known[r.ID] = true
		site += r.Bytes
		perUser[r.UserID] += r.Bytes
	}
	for _, id := range stored {
		if known[id] {
			continue
		}
		if err := c.Storage.Delete(ctx, id); err != nil {
			return res, fmt.Errorf("delete orphan %d: %w", id, err)
		}
		res.Orphans++
		logger.Info("orphan recording media deleted", "recording_id", id)
	}

	del := func(r *onair.Recording, why string) error {
		if err := c.Recordings.PurgeRecording(ctx, r.ID); err != nil {
			return err
		}
		if err := c.Storage.Delete(ctx, r.ID); err != nil {
			return fmt.Errorf("delete recording %d media: %w", r.ID, err)
		}
		site -= r.Bytes
		perUser[r.UserID] -= r.Bytes
		res.Deleted++
		res.Bytes += r.Bytes
		logger.Info("recording deleted by retention", "recording_id", r.ID, "channel", r.Channel,
			"user_id", r.UserID, "bytes", r.Bytes, "reason", why)
		return nil
	}
	// all is oldest first.
	for _, r := range all {
		if r.Status == onair.RecordingActive {
			continue
		}
		why := ""
		switch {
		case c.MaxAge > 0 && now().Sub(endOf(r)) > c.MaxAge:
			why = "max age"
		case c.UserQuota > 0 && perUser[r.UserID] > c.UserQuota:
			why = "user quota"
		case c.MaxBytes > 0 && site > c.MaxBytes:
			why = "site limit"
		default:
			continue
		}
		if err := del(r, why); err != nil {
			return res, err
		}
	}
	return res, nil
}

// endOf returns when a recording ended (or started, when unknown).
func endOf(r *onair.Recording) time.Time {
	if r.EndedAt != nil {
		return *r.EndedAt
	}
	return r.StartedAt
}
