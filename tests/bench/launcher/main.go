// Command launcher runs one benchmark client and writes its resource usage:
//
//	launcher -rusage FILE -- PROGRAM [ARGS...]
//
// It starts PROGRAM with the launcher's stdin, stdout and stderr, waits for
// it, writes {"exit_code","signal","utime_s","stime_s","maxrss_kib"} as JSON
// to FILE and exits with PROGRAM's exit code.
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
	"syscall"
)

func main() {
	out := flag.String("rusage", "", "file to write the JSON resource usage to")
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
	err := cmd.Wait()
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
