package stats

import (
	"bytes"
	"os"
	"strconv"
)

// clockTicks is USER_HZ, the unit of /proc CPU times: 100 on every Linux ABI in use.
const clockTicks = 100

// readProc returns the process's CPU time (user+system, seconds) and resident set size
// (bytes) from /proc/self/stat (proc(5)).
func readProc() (cpuSeconds float64, rss uint64, ok bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, 0, false
	}
	return parseProcStat(b, os.Getpagesize())
}

// parseProcStat parses /proc/[pid]/stat: the fields after the command name in
// parentheses (which may hold spaces and parentheses itself) start with field 3, state;
// utime and stime are fields 14 and 15 (clock ticks), rss field 24 (pages).
func parseProcStat(b []byte, pageSize int) (cpuSeconds float64, rss uint64, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := bytes.Fields(b[i+1:])
	const first = 3 // fields[0] is field 3
	if len(fields) < 24-first+1 {
		return 0, 0, false
	}
	utime, err1 := strconv.ParseUint(string(fields[14-first]), 10, 64)
	stime, err2 := strconv.ParseUint(string(fields[15-first]), 10, 64)
	pages, err3 := strconv.ParseInt(string(fields[24-first]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || pages < 0 {
		return 0, 0, false
	}
	return float64(utime+stime) / clockTicks, uint64(pages) * uint64(pageSize), true
}
