package catalog

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"sync"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/model"
)

// Writer writes one cell's registrations into the catalog in batches: a
// group commit. A write waits while the batch before it is in flight and
// then leaves with every write that waited, up to MaxTxnOps operations, in
// one transaction: one Raft write for many instances, where an agent's
// anti-entropy sends each service as a Raft write of its own. A cell
// starting a hundred instances at once makes a few transactions.
//
// Every batch starts with the cell's node (NodeOp). A transaction is
// atomic: when Consul refuses one (a write the token may not make, a check
// of an instance that is gone), the writes it names fail and the rest of
// the batch is sent again.
type Writer struct {
	txn  *consul.Txn
	node *consul.TxnOp

	mu       sync.Mutex
	queue    []*write
	flushing bool
}

// write is one caller's operations and where its result goes.
type write struct {
	ops  consul.TxnOps
	done chan error
}

// NewWriter writes cell's registrations (its node at address) through
// client.
func NewWriter(client *consul.Client, cell, address string) *Writer {
	return &Writer{txn: client.Txn(), node: NodeOp(cell, address)}
}

// Apply writes ops (at most MaxTxnOps-1 of them) in the next batch and
// returns once Consul committed it, or with why it did not.
func (w *Writer) Apply(ops consul.TxnOps) error {
	if len(ops) == 0 {
		return nil
	}
	if len(ops) >= MaxTxnOps {
		return fmt.Errorf("writing %d catalog operations: more than a transaction holds (%d)", len(ops), MaxTxnOps-1)
	}
	wr := &write{ops: ops, done: make(chan error, 1)}
	w.mu.Lock()
	w.queue = append(w.queue, wr)
	lead := !w.flushing
	w.flushing = true
	w.mu.Unlock()
	if lead {
		go w.flush()
	}
	return <-wr.done
}

// flush sends batches until the queue is empty. The write that found no
// batch in flight starts it; writes that come meanwhile join the next
// batch.
func (w *Writer) flush() {
	for {
		w.mu.Lock()
		n, size := 0, 1
		for n < len(w.queue) && size+len(w.queue[n].ops) <= MaxTxnOps {
			size += len(w.queue[n].ops)
			n++
		}
		batch := w.queue[:n:n]
		w.queue = w.queue[n:]
		if n == 0 {
			w.flushing = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		w.send(batch)
	}
}

// send commits a batch and answers each of its writes. When Consul refuses
// the transaction, the writes whose operations it named fail with what it
// said and the others are sent again, without them.
func (w *Writer) send(batch []*write) {
	for len(batch) > 0 {
		ops := consul.TxnOps{w.node}
		owner := []int{-1}
		for i, wr := range batch {
			ops = append(ops, wr.ops...)
			for range wr.ops {
				owner = append(owner, i)
			}
		}
		ok, resp, _, err := w.txn.Txn(ops, nil)
		if err != nil {
			err = fmt.Errorf("writing %d catalog operations: %w", len(ops), err)
		} else if !ok {
			err = fmt.Errorf("writing %d catalog operations: %w", len(ops), refused(resp.Errors))
		}
		if err == nil || len(batch) == 1 {
			for _, wr := range batch {
				wr.done <- err
			}
			return
		}
		failed := map[int]bool{}
		if !ok {
			for _, e := range resp.Errors {
				if e.OpIndex > 0 && e.OpIndex < len(owner) {
					failed[owner[e.OpIndex]] = true
				}
			}
		}
		if len(failed) == 0 {
			// Nothing to single out (Consul out of reach, or the node's
			// own operation): the batch fails as one.
			for _, wr := range batch {
				wr.done <- err
			}
			return
		}
		rest := batch[:0:0]
		for i, wr := range batch {
			if failed[i] {
				wr.done <- err
			} else {
				rest = append(rest, wr)
			}
		}
		batch = rest
	}
}

// ErrTxnRefused says Consul rolled a transaction back.
var ErrTxnRefused = errors.New("consul refused the transaction")

// refused is ErrTxnRefused with what Consul said of each operation.
func refused(errs consul.TxnErrors) error {
	var what []string
	for _, e := range errs {
		what = append(what, fmt.Sprintf("operation %d: %s", e.OpIndex, e.What))
	}
	return fmt.Errorf("%w: %s", ErrTxnRefused, strings.Join(what, "; "))
}

// standalone is the cell named for the node of instances registered
// without a cell (Register).
const standalone = "standalone"

// Register writes one instance at once, under its cell's node (a node
// "standalone" for an instance of no cell): for tools and tests that
// register instances outside a cell (bench/router, the router's tests).
// Cells write theirs through their Writer.
func Register(client *consul.Client, in model.Endpoint, hc model.HealthCheck) error {
	return alone(client, in, func(node string) consul.TxnOps { return InstanceOps(node, in, hc) })
}

// SetCheck sets one check of an instance registered by Register: its
// health check (HealthOp) or, with ready, its readiness check (ReadyOp).
func SetCheck(client *consul.Client, in model.Endpoint, ready, passing bool) error {
	return alone(client, in, func(node string) consul.TxnOps {
		if ready {
			return consul.TxnOps{ReadyOp(node, in.InstanceRef, passing)}
		}
		return consul.TxnOps{HealthOp(node, in.InstanceRef, passing)}
	})
}

// Deregister removes one instance Register wrote.
func Deregister(client *consul.Client, in model.Endpoint) error {
	return alone(client, in, func(node string) consul.TxnOps { return consul.TxnOps{DeregisterOp(node, in.InstanceRef)} })
}

// alone writes, at once, the operations ops makes for the node of in's
// cell (Register).
func alone(client *consul.Client, in model.Endpoint, ops func(node string) consul.TxnOps) error {
	cell := cmp.Or(in.Cell, standalone)
	return NewWriter(client, cell, in.Address).Apply(ops(CellNode(cell)))
}
