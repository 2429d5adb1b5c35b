package runtime

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// tailMaxBytes bounds how much of the end of a log TailLines reads.
const tailMaxBytes = 1 << 20

// LogPath is the file the task of container id writes its stdout and
// stderr to. containerd's shim holds it open, so it keeps filling while
// the agent is down. Nothing rotates it.
func (r *Runtime) LogPath(id string) string {
	return filepath.Join(r.cfg.LogDir, id+".log")
}

// RemoveLog deletes the log file of container id, and those of the
// processes started in its task (Exec); a missing one is fine.
func (r *Runtime) RemoveLog(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("removing the log of %q: invalid id", id)
	}
	if err := os.Remove(r.LogPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the log of %s: %w", id, err)
	}
	return r.removeExecLogs(id) // exec.go
}

// TailLines returns the last n lines of the file at path, without their
// line ends. It reads at most the last MiB of the file; a line cut by that
// limit is left out. A missing or unreadable file gives nil.
func TailLines(path string, n int) []string {
	if n <= 0 {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil || size == 0 {
		return nil
	}
	// Read backwards in chunks until n+1 line ends are in hand (the
	// extra one marks where the first wanted line starts).
	const chunk = 16 << 10
	var buf []byte
	off := size
	for off > 0 && size-off < tailMaxBytes && bytes.Count(buf, []byte{'\n'}) <= n {
		step := int64(chunk)
		if off < step {
			step = off
		}
		off -= step
		b := make([]byte, step)
		if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
			return nil
		}
		buf = append(b, buf...)
	}
	buf = bytes.TrimSuffix(buf, []byte{'\n'})
	lines := bytes.Split(buf, []byte{'\n'})
	if off > 0 && len(lines) > 0 {
		// The first piece may be the end of a longer line.
		lines = lines[1:]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = string(bytes.TrimSuffix(l, []byte{'\r'}))
	}
	return out
}

// SettledTail is TailLines once the log at path has stopped growing (its
// size unchanged for settle), waiting at most limit: a process's last
// words may reach its log a little after its exit is known (the shim
// copies its output on its own).
func SettledTail(path string, n int, settle, limit time.Duration) []string {
	deadline := time.Now().Add(limit)
	last := int64(-1)
	for time.Now().Before(deadline) {
		size := int64(-2)
		if st, err := os.Stat(path); err == nil {
			size = st.Size()
		}
		if size == last {
			break
		}
		last = size
		time.Sleep(settle)
	}
	return TailLines(path, n)
}
