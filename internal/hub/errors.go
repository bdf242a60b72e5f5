package hub

import "errors"

var (
	// ErrPublisherActive is returned by Registry.Publish when the stream already has a publisher.
	ErrPublisherActive = errors.New("stream already has a publisher")

	// ErrStreamEnded is returned by Reader.Read once the stream has ended and the reader's queue is drained.
	ErrStreamEnded = errors.New("stream ended")

	// ErrReaderClosed is returned by Reader.Read after Reader.Close.
	ErrReaderClosed = errors.New("reader closed")

	// ErrRegistryClosed is returned by Registry.Publish after Registry.Close.
	ErrRegistryClosed = errors.New("registry closed")

	// ErrTimestampBackwards is returned by Publisher.WriteUnit when a track's DTS goes backwards.
	ErrTimestampBackwards = errors.New("timestamp went backwards")

	// ErrInvalidUnit is returned by Publisher.WriteUnit for a unit that does not fit the stream.
	ErrInvalidUnit = errors.New("invalid unit")

	// ErrPublisherClosed is returned by Publisher.WriteUnit after the publisher was closed or kicked.
	ErrPublisherClosed = errors.New("publisher closed")
)
