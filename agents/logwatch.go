package agents

import (
	"sync"

	"github.com/fsnotify/fsnotify"
)

// logWatch wakes the followers of log files when their file is written
// (inotify), so that a line reaches `driftless logs -f` within
// milliseconds instead of the next poll. One watcher serves every file
// of the process (inotify instances are few per user); followers poll
// anyway, more slowly, so a watcher that cannot be made (or a missed
// event) only slows them.
type logWatch struct {
	once    sync.Once
	w       *fsnotify.Watcher
	mu      sync.Mutex
	wakeups map[string]map[chan struct{}]struct{}
}

var logWatcher logWatch

// watch returns a channel signalled when path is written, and a function
// that stops watching; a nil channel when the watcher is unavailable.
func (lw *logWatch) watch(path string) (<-chan struct{}, func()) {
	lw.once.Do(lw.start)
	if lw.w == nil {
		return nil, func() {}
	}
	ch := make(chan struct{}, 1)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.wakeups[path] == nil {
		if err := lw.w.Add(path); err != nil {
			return nil, func() {}
		}
		lw.wakeups[path] = map[chan struct{}]struct{}{}
	}
	lw.wakeups[path][ch] = struct{}{}
	return ch, func() {
		lw.mu.Lock()
		defer lw.mu.Unlock()
		delete(lw.wakeups[path], ch)
		if len(lw.wakeups[path]) == 0 {
			delete(lw.wakeups, path)
			_ = lw.w.Remove(path) // the file may be gone already
		}
	}
}

func (lw *logWatch) start() {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return // followers poll
	}
	lw.w, lw.wakeups = w, map[string]map[chan struct{}]struct{}{}
	go func() {
		for {
			select {
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				lw.mu.Lock()
				for ch := range lw.wakeups[ev.Name] {
					select {
					case ch <- struct{}{}:
					default: // a wake-up is pending already
					}
				}
				lw.mu.Unlock()
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
			}
		}
	}()
}
