package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
)

// Start says where a read begins; the first of After, Since and Last
// that is set wins, and with none a read begins with what comes next.
type Start struct {
	// After resumes after this sequence (a line's or event's Seq): a
	// reader that lost its connection misses nothing.
	After uint64
	// Since begins with what was kept from this time on.
	Since time.Time
	// Last begins with the last Last matching entries.
	Last int
}

// LogQuery selects an app's lines.
type LogQuery struct {
	Space, App string
	// Source keeps one source's lines ("" for all).
	Source model.LogSource
	// Index keeps one instance index's lines (nil for all).
	Index *int
	Start
	// Follow keeps reading new lines until the context ends.
	Follow bool
}

// EventQuery selects events: of one app (with its space's events that
// name no app, such as commits), of one space, or all ("").
type EventQuery struct {
	Space, App string
	Start
	Follow bool
}

// Logs calls emit with the lines q selects, oldest first, each with its
// Seq, until they are read (or, with Follow, until ctx ends or emit
// fails). Lines that do not decode are skipped.
func (j *Journal) Logs(ctx context.Context, q LogQuery, emit func(model.LogLine) error) error {
	if err := j.EnsureSpace(ctx, q.Space); err != nil {
		return err
	}
	filter := bus.LogFilter(q.Space, q.App, q.Source, q.Index)
	return j.read(ctx, bus.LogStream(q.Space), []string{filter}, q.Start, q.Follow, func(data []byte, seq uint64) error {
		var l model.LogLine
		if json.Unmarshal(data, &l) != nil {
			return nil
		}
		l.Seq = seq
		return emit(l)
	})
}

// Events calls emit with the events q selects, as Logs does.
func (j *Journal) Events(ctx context.Context, q EventQuery, emit func(model.Event) error) error {
	if err := j.EnsureEvents(ctx); err != nil {
		return err
	}
	filters := []string{bus.EventFilter(q.Space, q.App)}
	if q.App != "" {
		filters = append(filters, bus.EventFilter(q.Space, "_")) // the space's commits
	}
	return j.read(ctx, bus.EventStream, filters, q.Start, q.Follow, func(data []byte, seq uint64) error {
		var ev model.Event
		if json.Unmarshal(data, &ev) != nil {
			return nil
		}
		ev.Seq = seq
		return emit(ev)
	})
}

// batch is how many entries one fetch asks for.
const batch = 256

// read is Logs and Events over one stream: an ordered consumer (which
// recreates itself after a server restart, from the last sequence it
// delivered) from the start position, filtered by the server.
func (j *Journal) read(ctx context.Context, stream string, filters []string, start Start, follow bool, emit func([]byte, uint64) error) error {
	st, err := j.js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("opening stream %s: %w", stream, err)
	}
	cfg, err := j.startAt(ctx, st, filters, start)
	if err != nil {
		return err
	}
	if cfg == nil && !follow {
		return nil // nothing matches
	}
	if cfg == nil { // from what comes next
		info, err := st.Info(ctx)
		if err != nil {
			return fmt.Errorf("reading stream %s: %w", stream, err)
		}
		cfg = &jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: info.State.LastSeq + 1}
	}
	cfg.FilterSubjects = filters
	cfg.InactiveThreshold = time.Minute
	var n uint64
	if !follow {
		if n, err = pending(ctx, st, *cfg); err != nil || n == 0 {
			return err
		}
	}
	cons, err := st.OrderedConsumer(ctx, *cfg)
	if err != nil {
		return fmt.Errorf("reading stream %s: %w", stream, err)
	}
	if !follow {
		return fetchAll(ctx, cons, n, emit)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("following stream %s: %w", stream, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return fmt.Errorf("following stream %s: %w", stream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			continue
		}
		if err := emit(m.Data(), md.Sequence.Stream); err != nil {
			return err
		}
	}
}

// fetchAll reads the n entries that were pending, or until nothing is
// (some aged out meanwhile).
func fetchAll(ctx context.Context, cons jetstream.Consumer, n uint64, emit func([]byte, uint64) error) error {
	for n > 0 && ctx.Err() == nil {
		msgs, err := cons.Fetch(int(min(n, batch)), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("reading a stream: %w", err)
		}
		got, done := uint64(0), false
		for m := range msgs.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if err := emit(m.Data(), md.Sequence.Stream); err != nil {
				return err
			}
			done = md.NumPending == 0
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
			return fmt.Errorf("reading a stream: %w", err)
		}
		if done || got == 0 {
			return nil
		}
		n -= min(n, got)
	}
	return nil
}

// startAt is the consumer position of start; nil when start is empty or
// no entry matches its Last.
func (j *Journal) startAt(ctx context.Context, st jetstream.Stream, filters []string, start Start) (*jetstream.OrderedConsumerConfig, error) {
	switch {
	case start.After > 0:
		return &jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start.After + 1}, nil
	case !start.Since.IsZero():
		since := start.Since
		return &jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since}, nil
	case start.Last > 0:
		seq, err := startOfLast(ctx, st, filters, start.Last)
		if err != nil || seq == 0 {
			return nil, err
		}
		return &jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: seq}, nil
	}
	return nil, nil
}

// startOfLast is the sequence from which filters match the last n
// entries of the stream (0: none matches). JetStream counts what a
// consumer has pending but cannot start "n back", so this searches the
// sequence range with throwaway consumers: log2 of the stream's length
// of them, each two requests.
func startOfLast(ctx context.Context, st jetstream.Stream, filters []string, n int) (uint64, error) {
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("reading stream %s: %w", st.CachedInfo().Config.Name, err)
	}
	lo, hi := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		return 0, nil
	}
	at := func(seq uint64) (uint64, error) {
		return pending(ctx, st, jetstream.OrderedConsumerConfig{FilterSubjects: filters,
			DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: seq})
	}
	total, err := at(lo)
	if err != nil || total == 0 {
		return 0, err
	}
	if total <= uint64(n) {
		return lo, nil
	}
	// pending(lo) >= n > pending(hi+1) = 0: find the largest seq with
	// pending(seq) >= n, which has exactly n.
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		p, err := at(mid)
		if err != nil {
			return 0, err
		}
		if p >= uint64(n) {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo, nil
}

// pending is how many entries a consumer made as cfg says would deliver.
func pending(ctx context.Context, st jetstream.Stream, cfg jetstream.OrderedConsumerConfig) (uint64, error) {
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{
		FilterSubjects: cfg.FilterSubjects, DeliverPolicy: cfg.DeliverPolicy,
		OptStartSeq: cfg.OptStartSeq, OptStartTime: cfg.OptStartTime,
		AckPolicy: jetstream.AckNonePolicy, InactiveThreshold: 10 * time.Second, MemoryStorage: true,
	})
	if err != nil {
		return 0, fmt.Errorf("counting entries of stream %s: %w", st.CachedInfo().Config.Name, err)
	}
	info := cons.CachedInfo()
	_ = st.DeleteConsumer(context.WithoutCancel(ctx), info.Name) // else the server drops it when inactive
	return info.NumPending, nil
}
