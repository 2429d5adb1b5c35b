package catalog

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
)

func TestNextIndex(t *testing.T) {
	tests := []struct {
		prev, next, want uint64
	}{
		{0, 5, 5}, {5, 5, 5}, {5, 9, 9}, {9, 5, 0}, {5, 0, 0},
	}
	for _, tt := range tests {
		if got := NextIndex(tt.prev, tt.next); got != tt.want {
			t.Errorf("NextIndex(%d, %d) = %d, want %d", tt.prev, tt.next, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	var b Backoff
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	for _, w := range want {
		if got := b.Next(); got != w {
			t.Fatalf("Next = %s, want %s", got, w)
		}
	}
	for range 10 {
		b.Next()
	}
	if got := b.Next(); got != 10*time.Second {
		t.Fatalf("Next after many = %s, want the 10 s cap", got)
	}
	b.Reset()
	if got := b.Next(); got != 100*time.Millisecond {
		t.Fatalf("Next after Reset = %s", got)
	}
}

// TestFollow: each query is asked at the last answer's index, again from
// 0 after a failure (logged), and the loop ends on ErrStop.
func TestFollow(t *testing.T) {
	answers := []struct {
		index uint64
		err   error
	}{{5, nil}, {9, nil}, {0, errors.New("consul down")}, {3, nil}, {0, ErrStop}}
	var asked []uint64
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	done := make(chan struct{})
	go func() {
		defer close(done)
		Follow(context.Background(), log, "the things", RoleRouter, time.Second, func(opts *consul.QueryOptions) (*consul.QueryMeta, error) {
			a := answers[len(asked)]
			asked = append(asked, opts.WaitIndex)
			if a.err != nil {
				return nil, a.err
			}
			return &consul.QueryMeta{LastIndex: a.index}, nil
		})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not end on ErrStop")
	}
	if want := []uint64{0, 5, 9, 0, 3}; !slices.Equal(asked, want) {
		t.Errorf("indexes asked %v, want %v", asked, want)
	}
	if !strings.Contains(logs.String(), "reading the things from Consul; retrying") || !strings.Contains(logs.String(), "consul down") {
		t.Errorf("the failure was not logged: %s", logs.String())
	}
}
