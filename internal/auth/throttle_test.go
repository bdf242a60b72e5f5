package auth_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onair/onair/internal/auth"
)

func TestThrottleWindow(t *testing.T) {
	c := newClock()
	th := &auth.Throttle{Max: 3, Window: time.Minute, Now: c.Now}

	ok, retry := th.Allow("alice")
	require.True(t, ok)
	require.Zero(t, retry)

	th.Fail("alice") // the window opens now
	c.Add(10 * time.Second)
	th.Fail("alice")
	ok, _ = th.Allow("alice")
	require.True(t, ok, "two of three failures")
	th.Fail("alice")

	ok, retry = th.Allow("alice")
	require.False(t, ok)
	require.Equal(t, 50*time.Second, retry)

	ok, _ = th.Allow("bob")
	require.True(t, ok, "keys are independent")

	c.Add(49 * time.Second)
	ok, retry = th.Allow("alice")
	require.False(t, ok)
	require.Equal(t, time.Second, retry)

	// More failures while blocked do not extend the window.
	th.Fail("alice")
	c.Add(time.Second)
	ok, retry = th.Allow("alice")
	require.True(t, ok)
	require.Zero(t, retry)

	// A fresh window.
	th.Fail("alice")
	ok, _ = th.Allow("alice")
	require.True(t, ok)
}

func TestThrottleReset(t *testing.T) {
	c := newClock()
	th := &auth.Throttle{Max: 1, Window: time.Minute, Now: c.Now}
	th.Fail("alice")
	ok, _ := th.Allow("alice")
	require.False(t, ok)
	th.Reset("alice")
	ok, _ = th.Allow("alice")
	require.True(t, ok)
	require.Zero(t, th.Len())
	th.Reset("nobody")
}

func TestThrottleDefaults(t *testing.T) {
	c := newClock()
	th := &auth.Throttle{Now: c.Now}
	for range auth.DefaultThrottleMax {
		ok, _ := th.Allow("k")
		require.True(t, ok)
		th.Fail("k")
	}
	ok, retry := th.Allow("k")
	require.False(t, ok)
	require.Equal(t, auth.DefaultThrottleWindow, retry)
}

func TestThrottlePrune(t *testing.T) {
	c := newClock()
	th := &auth.Throttle{Max: 2, Window: time.Minute, Now: c.Now}
	for i := range 1000 {
		th.Fail("ip" + strconv.Itoa(i))
	}
	require.Equal(t, 1000, th.Len())
	c.Add(30 * time.Second)
	th.Fail("late")
	require.Equal(t, 1001, th.Len())
	c.Add(30 * time.Second)
	ok, _ := th.Allow("x")
	require.True(t, ok)
	require.Equal(t, 1, th.Len(), "expired windows are pruned")
	c.Add(30 * time.Second)
	th.Fail("other")
	require.Equal(t, 1, th.Len())
}

func TestThrottleEvictionCap(t *testing.T) {
	c := newClock()
	th := &auth.Throttle{Max: 1, Window: time.Hour, Now: c.Now, MaxKeys: 100}
	for i := range 250 {
		th.Fail("k" + strconv.Itoa(i))
		c.Add(time.Millisecond)
		require.LessOrEqual(t, th.Len(), 100)
	}
	require.Equal(t, 100, th.Len())
	// The oldest keys were evicted, the newest are still blocked.
	ok, _ := th.Allow("k0")
	require.True(t, ok)
	ok, _ = th.Allow("k149")
	require.True(t, ok)
	ok, _ = th.Allow("k150")
	require.False(t, ok)
	ok, _ = th.Allow("k249")
	require.False(t, ok)

	// Failing a tracked key again does not evict anything.
	th.Fail("k249")
	require.Equal(t, 100, th.Len())
	ok, _ = th.Allow("k150")
	require.False(t, ok)
}

func TestThrottleDefaultCap(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	c := newClock()
	th := &auth.Throttle{Now: c.Now}
	for i := range auth.DefaultThrottleMaxKeys + 1000 {
		th.Fail(strconv.Itoa(i))
	}
	require.Equal(t, auth.DefaultThrottleMaxKeys, th.Len())
}

func TestThrottleConcurrent(t *testing.T) {
	c := newClock()
	th := &auth.Throttle{Max: 1000, Window: time.Minute, Now: c.Now, MaxKeys: 50}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				key := "k" + strconv.Itoa((g*500+i)%80)
				th.Fail(key)
				th.Allow(key)
				if i%50 == 0 {
					th.Reset(key)
					c.Add(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	require.LessOrEqual(t, th.Len(), 50)
}
