package cmaf

import "errors"

// Errors returned by the Segmenter that callers may branch on.
var (
	// ErrNotStarted is returned by WriteUnit and Reset before Start.
	ErrNotStarted = errors.New("segmenter not started")

	// ErrClosed is returned by WriteUnit and Reset after Close.
	ErrClosed = errors.New("segmenter closed")

	// ErrNoTracks is returned by WriteUnit after a Reset whose tracks could not be used,
	// until a Reset succeeds.
	ErrNoTracks = errors.New("no usable tracks")

	// ErrInvalidUnit is returned by WriteUnit for a unit it refuses: an unknown track, a DTS
	// that goes backwards, or a payload larger than MaxPartSize. The unit is dropped and
	// the segmenter goes on.
	ErrInvalidUnit = errors.New("invalid unit")
)
