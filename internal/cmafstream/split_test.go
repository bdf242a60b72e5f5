package cmafstream

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// fragment builds a moof+mdat in cmaf's layout with one traf per track ID, n samples each.
func fragment(ids []uint32, n int) []byte {
	moof := 8 + 16
	for range ids {
		moof += 8 + 16 + 20 + 20 + 8*n
	}
	data := len(ids) * n * 3
	b := binary.BigEndian.AppendUint32(nil, uint32(moof))
	b = append(b, "moof"...)
	b = binary.BigEndian.AppendUint32(b, 16)
	b = append(b, "mfhd"...)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, 7)
	off := moof + 8
	for _, id := range ids {
		b = binary.BigEndian.AppendUint32(b, uint32(8+16+20+20+8*n))
		b = append(b, "traf"...)
		b = binary.BigEndian.AppendUint32(b, 16)
		b = append(b, "tfhd"...)
		b = binary.BigEndian.AppendUint32(b, 0x020000)
		b = binary.BigEndian.AppendUint32(b, id)
		b = binary.BigEndian.AppendUint32(b, 20)
		b = append(b, "tfdt"...)
		b = binary.BigEndian.AppendUint32(b, 1<<24)
		b = binary.BigEndian.AppendUint64(b, uint64(1000*id))
		b = binary.BigEndian.AppendUint32(b, uint32(20+8*n))
		b = append(b, "trun"...)
		b = binary.BigEndian.AppendUint32(b, 1<<24|0x301)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
		b = binary.BigEndian.AppendUint32(b, uint32(off))
		for i := 0; i < n; i++ {
			b = binary.BigEndian.AppendUint32(b, 10)
			b = binary.BigEndian.AppendUint32(b, 3)
		}
		off += 3 * n
	}
	b = binary.BigEndian.AppendUint32(b, uint32(8+data))
	b = append(b, "mdat"...)
	for _, id := range ids {
		for i := 0; i < 3*n; i++ {
			b = append(b, byte(id))
		}
	}
	return b
}

func TestSplitFragment(t *testing.T) {
	b := fragment([]uint32{1, 2}, 4)
	for _, id := range []uint32{1, 2} {
		f, err := splitFragment(b, id)
		require.NoError(t, err)
		require.Equal(t, uint64(1000*id), f.BaseTime)
		require.Equal(t, uint64(40), f.Duration)
		// The cut fragment is the one-track fragment built directly.
		require.Equal(t, fragment([]uint32{id}, 4)[8+16+8+16+4:], f.Data[8+16+8+16+4:], "track %d", id)
		again, err := splitFragment(f.Data, id)
		require.NoError(t, err)
		require.Equal(t, f, again)
	}
	f, err := splitFragment(b, 3)
	require.NoError(t, err)
	require.Nil(t, f.Data)

	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short header", b[:6]},
		{"truncated", b[:len(b)-5]},
		{"no moof", b[len(b)-8-24:]},
	}
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			_, err := splitFragment(ca.b, 1)
			require.Error(t, err)
		})
	}
}

func FuzzSplitFragment(f *testing.F) {
	f.Add(fragment([]uint32{1, 2}, 3), uint32(1))
	f.Add(fragment([]uint32{2}, 1), uint32(2))
	f.Add([]byte{0, 0, 0, 8, 'm', 'o', 'o', 'f'}, uint32(1))
	f.Fuzz(func(t *testing.T, b []byte, id uint32) {
		fr, err := splitFragment(b, id)
		if err == nil && fr.Data != nil {
			if _, err := splitFragment(fr.Data, id); err != nil {
				t.Fatalf("a cut fragment does not parse: %v", err)
			}
		}
	})
}

func FuzzSplitInit(f *testing.F) {
	f.Add([]byte{0, 0, 0, 8, 'm', 'o', 'o', 'v'}, uint32(1))
	f.Add([]byte{0, 0, 0, 16, 'f', 't', 'y', 'p', 0, 0, 0, 0, 0, 0, 0, 0}, uint32(1))
	f.Fuzz(func(t *testing.T, b []byte, id uint32) {
		_, _ = splitInit(b, id)
	})
}
