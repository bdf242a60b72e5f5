package hub

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRegistryDroppedIsCumulative(t *testing.T) {
	reg := mustRegistry(t, -1, 4)
	p, err := reg.Publish("alice", testTracks)
	require.NoError(t, err)
	slow, err := p.Stream().AddReader("rtmp")
	require.NoError(t, err)
	other, err := p.Stream().AddReader("hls")
	require.NoError(t, err)
	defer other.Close()

	// The "rtmp" reader never reads: its queue (4) overflows.
	for i := range 10 {
		require.NoError(t, p.WriteUnit(video(time.Duration(i)*33*time.Millisecond, i == 0)))
	}
	dropped := slow.Dropped()
	require.Positive(t, dropped)
	require.Equal(t, dropped, p.Stream().Info().Dropped["rtmp"])
	require.Equal(t, dropped, reg.Dropped()["rtmp"])

	// Detaching the reader removes it from Info, not from the registry's count.
	slow.Close()
	require.Zero(t, p.Stream().Info().Dropped["rtmp"])
	require.Equal(t, dropped, reg.Dropped()["rtmp"])
	require.Contains(t, reg.Dropped(), "hls")
}

func TestStreamBytesOut(t *testing.T) {
	reg := mustRegistry(t, -1, 4)
	p, err := reg.Publish("alice", testTracks)
	require.NoError(t, err)
	st := p.Stream()
	st.AddBytesOut(100)
	st.AddBytesOut(0)
	st.AddBytesOut(-5)
	st.AddBytesOut(20)
	require.Equal(t, uint64(120), st.Info().BytesOut)
}
