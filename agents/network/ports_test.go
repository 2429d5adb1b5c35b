package network

import (
	"errors"
	"net"
	"testing"
)

func TestPorts(t *testing.T) {
	type step struct {
		op   string // "alloc", "reserve", "release"
		port int    // for reserve and release; the expected port for alloc
		err  bool
	}
	cases := []struct {
		name     string
		min, max int
		busy     map[int]bool // ports something on the host listens on
		steps    []step
	}{
		{"in order", 100, 102, nil, []step{
			{"alloc", 100, false}, {"alloc", 101, false}, {"alloc", 102, false}, {"alloc", 0, true},
		}},
		{"round robin after release", 100, 102, nil, []step{
			{"alloc", 100, false}, {"release", 100, false}, {"alloc", 101, false},
			{"alloc", 102, false}, {"alloc", 100, false}, {"alloc", 0, true},
		}},
		{"skips ports the host listens on", 100, 103, map[int]bool{100: true, 102: true}, []step{
			{"alloc", 101, false}, {"alloc", 103, false}, {"alloc", 0, true},
		}},
		{"skips reserved ports", 100, 102, nil, []step{
			{"reserve", 100, false}, {"reserve", 101, false}, {"alloc", 102, false}, {"alloc", 0, true},
			{"release", 101, false}, {"alloc", 101, false},
		}},
		{"reserve errors", 100, 102, nil, []step{
			{"reserve", 99, true}, {"reserve", 103, true}, {"reserve", 101, false}, {"reserve", 101, true},
			{"release", 101, false}, {"reserve", 101, false},
		}},
		{"reserve ignores host listeners", 100, 100, map[int]bool{100: true}, []step{
			{"alloc", 0, true}, {"reserve", 100, false},
		}},
		{"release of a free port is harmless", 100, 101, nil, []step{
			{"release", 100, false}, {"release", 5000, false}, {"alloc", 100, false}, {"alloc", 101, false},
		}},
		{"single port", 7000, 7000, nil, []step{
			{"alloc", 7000, false}, {"alloc", 0, true}, {"release", 7000, false}, {"alloc", 7000, false},
		}},
		{"min above max", 200, 100, nil, []step{{"alloc", 0, true}, {"reserve", 150, true}}},
		{"zero", 0, 10, nil, []step{{"alloc", 0, true}}},
		{"above 65535", 65535, 65536, nil, []step{{"alloc", 0, true}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := NewPorts(c.min, c.max)
			p.free = func(port int) bool { return !c.busy[port] }
			for i, s := range c.steps {
				switch s.op {
				case "alloc":
					got, err := p.Allocate()
					if (err != nil) != s.err || (!s.err && got != s.port) {
						t.Fatalf("step %d: Allocate() = %d, %v; want %d (error %v)", i, got, err, s.port, s.err)
					}
					if s.err && c.min <= c.max && c.min > 0 && c.max <= 65535 && !errors.Is(err, ErrNoFreePort) {
						t.Fatalf("step %d: error %v is not ErrNoFreePort", i, err)
					}
				case "reserve":
					if err := p.Reserve(s.port); (err != nil) != s.err {
						t.Fatalf("step %d: Reserve(%d) = %v; want error %v", i, s.port, err, s.err)
					}
				case "release":
					p.Release(s.port)
				}
			}
		})
	}
}

func TestPortsSkipsRealListener(t *testing.T) {
	// Something listens on the only port of the range, on loopback only.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	p := NewPorts(busy, busy)
	if got, err := p.Allocate(); !errors.Is(err, ErrNoFreePort) {
		t.Fatalf("Allocate() = %d, %v; want ErrNoFreePort (%d is listened on)", got, err, busy)
	}
	if err := p.Reserve(busy); err != nil {
		t.Fatalf("Reserve(%d): %v", busy, err)
	}
	l.Close()
	p.Release(busy)
	if got, err := p.Allocate(); err != nil || got != busy {
		t.Fatalf("Allocate() after the listener closed = %d, %v; want %d", got, err, busy)
	}
}
