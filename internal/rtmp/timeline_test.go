package rtmp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTimelineUnwrap(t *testing.T) {
	const ms = time.Millisecond
	const wrap = (1 << 32) * ms
	var tl timeline
	in := []time.Duration{wrap - 40*ms, wrap - 20*ms, wrap - 30*ms, 0, 5 * ms, wrap - 10*ms, 20 * ms, 1 << 31 * ms}
	want := []time.Duration{wrap - 40*ms, wrap - 20*ms, wrap - 30*ms, wrap, wrap + 5*ms, wrap - 10*ms, wrap + 20*ms, wrap + 1<<31*ms}
	for i, d := range in {
		require.Equal(t, want[i], tl.unwrap(d), "timestamp %d", i)
	}
	// going backwards stays backwards (the hub refuses it)
	var tl2 timeline
	require.Equal(t, 2*time.Second, tl2.unwrap(2*time.Second))
	require.Equal(t, time.Second, tl2.unwrap(time.Second))
}
