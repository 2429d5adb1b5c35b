package drains

import (
	"context"
	"sync"
)

// queue is a bounded FIFO of framed messages between the reader (the
// journal) and the writer (the drain's connection). Push never blocks: a
// full queue drops the message and counts it. The writer peeks a batch,
// writes it and only then commits it, so a batch a broken connection did
// not take is written again on the next one.
type queue struct {
	mu      sync.Mutex
	items   [][]byte // a ring of len(items) slots
	head, n int
	dropped uint64
	ready   chan struct{} // a message was pushed (capacity 1)
}

func newQueue(size int) *queue {
	if size < 1 {
		size = 1
	}
	return &queue{items: make([][]byte, size), ready: make(chan struct{}, 1)}
}

// push adds m, or drops it when the queue is full (false).
func (q *queue) push(m []byte) bool {
	q.mu.Lock()
	if q.n == len(q.items) {
		q.dropped++
		q.mu.Unlock()
		return false
	}
	q.items[(q.head+q.n)%len(q.items)] = m
	q.n++
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// peek returns up to max messages from the front, leaving them queued.
func (q *queue) peek(max int) [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := min(max, q.n)
	out := make([][]byte, n)
	for i := range n {
		out[i] = q.items[(q.head+i)%len(q.items)]
	}
	return out
}

// commit removes the first n messages (written).
func (q *queue) commit(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n = min(n, q.n)
	for i := range n {
		q.items[(q.head+i)%len(q.items)] = nil
	}
	q.head = (q.head + n) % len(q.items)
	q.n -= n
}

// wait blocks until the queue holds a message or ctx ends (false).
func (q *queue) wait(ctx context.Context) bool {
	for {
		q.mu.Lock()
		n := q.n
		q.mu.Unlock()
		if n > 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-q.ready:
		}
	}
}

// len is how many messages wait; drops how many were dropped.
func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

func (q *queue) drops() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}
