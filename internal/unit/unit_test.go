package unit

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEncodedOnceAndShared(t *testing.T) {
	u := &Unit{Payload: [][]byte{{1, 2, 3}}}
	var calls atomic.Int32
	enc := func(u *Unit) []byte {
		calls.Add(1)
		return append([]byte{0xff}, u.Payload[0]...)
	}
	var wg sync.WaitGroup
	results := make([][]byte, 50)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = u.Encoded(EncodingRTMP, enc)
		}()
	}
	wg.Wait()
	for _, r := range results {
		require.Equal(t, []byte{0xff, 1, 2, 3}, r)
		require.Same(t, &results[0][0], &r[0]) // every reader shares one slice
	}
	before := calls.Load()
	u.Encoded(EncodingRTMP, enc)
	require.Equal(t, before, calls.Load()) // cached: no more encoding
}

func TestCodec(t *testing.T) {
	for c, want := range map[Codec]string{CodecH264: "h264", CodecH265: "h265", CodecAV1: "av1", CodecAAC: "aac", CodecMP3: "mp3", CodecOpus: "opus", 0: "unknown"} {
		require.Equal(t, want, c.String())
	}
	require.True(t, CodecAV1.IsVideo())
	require.False(t, CodecOpus.IsVideo())
}
