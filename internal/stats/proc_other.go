//go:build !linux

package stats

// readProc is not implemented outside Linux: CPU and RSS read as zero.
func readProc() (cpuSeconds float64, rss uint64, ok bool) { return 0, 0, false }
