// Command launcher runs one benchmark client and writes its resource usage:
//
//	launcher -rusage FILE -- PROGRAM [ARGS...]
//
// It starts PROGRAM with the launcher's stdin, stdout and stderr, waits for
// it, writes {"exit_code","signal","utime_s","stime_s","maxrss_kib"} as JSON
// to FILE and exits with PROGRAM's exit code.
//
// With -fds-every D (say 20ms) it also counts PROGRAM's open descriptors
// (the entries of /proc/PID/fd) while it runs and adds "peak_fds" (the
// highest count seen) and "fd_samples" to FILE. Counting is not free: the
// kernel takes about 1 µs per descriptor (5 ms for 5,000 sockets), and the
// launcher shares the client's CPU, so the pause between two counts is D or
// 50 times the last count's cost, whichever is longer: sampling takes at
// most about 2 % of that CPU, every 250 ms at 5,000 descriptors. That is
// coarse for a descriptor that lives a few milliseconds, but a client's
// peak is its pool of kept-alive connections, which lasts.
//
// Why not measure from the Python harness directly: Linux keeps a process's
// peak RSS across exec, and a child forked (or vforked) from the harness
// starts with the harness's own peak (~25 MiB of Python), which would floor
// every client's figure. A child started from this small Go program starts
// from this program's peak instead (a few MiB), which is below any client's.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// countFDs returns how many descriptors process pid has open, or -1 when
// /proc/PID/fd cannot be read (the process is gone). buf is reused.
func countFDs(pid int, buf []byte) int {
	fd, err := syscall.Open("/proc/"+strconv.Itoa(pid)+"/fd", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	defer syscall.Close(fd)
	n := 0
	for {
		m, err := syscall.Getdents(fd, buf)
		if err != nil {
			return -1
		}
		if m <= 0 {
			break
		}
		// struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), ...
		for off := 0; off < m; {
			reclen := int(buf[off+16]) | int(buf[off+17])<<8
			if reclen == 0 {
				break
			}
			n++
			off += reclen
		}
	}
	return n - 2 // "." and ".."
}

// sampleFDs counts pid's descriptors until stop closes, pausing every or
// 50 times the count's own cost between counts (whichever is longer), and
// keeps the peak in peak and the number of counts in samples.
func sampleFDs(pid int, every time.Duration, stop <-chan struct{}, peak, samples *atomic.Int64) {
	buf := make([]byte, 64<<10)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		start := time.Now()
		if n := countFDs(pid, buf); n >= 0 {
			samples.Add(1)
			if int64(n) > peak.Load() {
				peak.Store(int64(n))
			}
		}
		t.Reset(max(every, 50*time.Since(start)))
	}
}

func main() {
	out := flag.String("rusage", "", "file to write the JSON resource usage to")
	fdsEvery := flag.Duration("fds-every", 0, "count PROGRAM's open descriptors this often (0: never)")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: launcher -rusage FILE -- PROGRAM [ARGS...]")
		os.Exit(2)
	}
	// The harness stops a run by killing the whole process group; a
	// SIGTERM or SIGINT to the launcher alone is passed on.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "launcher:", err)
		os.Exit(127)
	}
	go func() {
		for s := range sigs {
			_ = cmd.Process.Signal(s)
		}
	}()
	var peakFDs, fdSamples atomic.Int64
	stopSampling, sampled := make(chan struct{}), make(chan struct{})
	if *fdsEvery > 0 {
		go func() {
			defer close(sampled)
			sampleFDs(cmd.Process.Pid, *fdsEvery, stopSampling, &peakFDs, &fdSamples)
		}()
	} else {
		close(sampled)
	}
	err := cmd.Wait()
	close(stopSampling)
	<-sampled
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		fmt.Fprintln(os.Stderr, "launcher:", err)
		os.Exit(127)
	}
	st := cmd.ProcessState
	ru, _ := st.SysUsage().(*syscall.Rusage)
	ws, _ := st.Sys().(syscall.WaitStatus)
	res := map[string]any{"exit_code": st.ExitCode(), "signal": ""}
	if ws.Signaled() {
		res["signal"] = ws.Signal().String()
	}
	if ru != nil {
		tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
		res["utime_s"] = tv(ru.Utime)
		res["stime_s"] = tv(ru.Stime)
		res["maxrss_kib"] = ru.Maxrss
	}
	if *fdsEvery > 0 {
		res["peak_fds"] = peakFDs.Load()
		res["fd_samples"] = fdSamples.Load()
	}
	b, _ := json.Marshal(res)
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "launcher:", err)
	}
	code := st.ExitCode()
	if code < 0 && ws.Signaled() {
		code = 128 + int(ws.Signal())
	}
	os.Exit(code)
}
