package network

import (
	"context"
	"errors"
	"io"
	"net"
	"reflect"
	"strconv"
	"testing"
)

// noMappings stands for a host NAT table without port mappings.
func noMappings(context.Context) (map[int]bool, error) { return map[int]bool{}, nil }

type nopHold struct{}

func (nopHold) Close() error { return nil }

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
			p := NewPorts("", c.min, c.max)
			p.hold = func(port int) (io.Closer, error) {
				if c.busy[port] {
					return nil, errors.New("address already in use")
				}
				return nopHold{}, nil
			}
			p.mapped = noMappings
			for i, s := range c.steps {
				switch s.op {
				case "alloc":
					got, err := p.Allocate(context.Background())
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
	p := NewPorts("127.0.0.1", busy, busy)
	p.mapped = noMappings
	if got, err := p.Allocate(context.Background()); !errors.Is(err, ErrNoFreePort) {
		t.Fatalf("Allocate() = %d, %v; want ErrNoFreePort (%d is listened on)", got, err, busy)
	}
	if err := p.Reserve(busy); err != nil {
		t.Fatalf("Reserve(%d): %v", busy, err)
	}
	l.Close()
	p.Release(busy)
	if got, err := p.Allocate(context.Background()); err != nil || got != busy {
		t.Fatalf("Allocate() after the listener closed = %d, %v; want %d", got, err, busy)
	}
}

func TestPortsSkipsMapped(t *testing.T) {
	p := NewPorts("", 100, 103)
	p.hold = func(int) (io.Closer, error) { return nopHold{}, nil }
	mapped := map[int]bool{100: true, 101: true, 103: true}
	p.mapped = func(context.Context) (map[int]bool, error) { return mapped, nil }
	ctx := context.Background()
	if got, err := p.Allocate(ctx); err != nil || got != 102 {
		t.Fatalf("Allocate() = %d, %v; want 102, the only port not mapped", got, err)
	}
	if got, err := p.Allocate(ctx); !errors.Is(err, ErrNoFreePort) {
		t.Fatalf("Allocate() = %d, %v; want ErrNoFreePort", got, err)
	}
	// An adopted instance's own mapping is there: Reserve takes it.
	if err := p.Reserve(101); err != nil {
		t.Fatalf("Reserve(101): %v", err)
	}
	p.mapped = func(context.Context) (map[int]bool, error) { return nil, errors.New("iptables: exit status 4") }
	if _, err := p.Allocate(ctx); err == nil || errors.Is(err, ErrNoFreePort) {
		t.Fatalf("Allocate() with the NAT table unreadable = %v; want that error", err)
	}
}

// Two allocators on one range, as two agents on one host: the socket
// holding each port handed out keeps the other from handing it out too,
// until it is released.
func TestPortsHold(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx := context.Background()
	a, b := NewPorts("127.0.0.1", base, base+1), NewPorts("", base, base+1)
	a.mapped, b.mapped = noMappings, noMappings
	pa, err := a.Allocate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(pa))); err == nil {
		t.Fatalf("port %d could be listened on while allocated", pa)
	}
	pb, err := b.Allocate(ctx)
	if err != nil || pb == pa {
		t.Fatalf("second allocator: Allocate() = %d, %v; want the other port than %d", pb, err, pa)
	}
	if got, err := b.Allocate(ctx); !errors.Is(err, ErrNoFreePort) {
		t.Fatalf("second allocator, range used up: Allocate() = %d, %v; want ErrNoFreePort", got, err)
	}
	a.Release(pa)
	if got, err := b.Allocate(ctx); err != nil || got != pa {
		t.Fatalf("after the first released %d: Allocate() = %d, %v", pa, got, err)
	}
	b.Release(pa)
	b.Release(pb)
	if a.InUse() != 0 || b.InUse() != 0 {
		t.Fatalf("in use after release: %d, %d", a.InUse(), b.InUse())
	}
}

func TestParseMappedPorts(t *testing.T) {
	rules := `-P PREROUTING ACCEPT
-N CNI-HOSTPORT-DNAT
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"driftless\" id: \"a\"" -m multiport --dports 22600 -j CNI-DN-1
-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \"x\" id: \"b\"" -m multiport --dports 8080,9000:9002 -j CNI-DN-2
-A CNI-HOSTPORT-DNAT -p udp -m udp --dport 53 -j CNI-DN-3
-A CNI-DN-1 -s 10.200.0.2/32 -d 127.0.0.1/32 -p tcp -m tcp --dport 22600 -j CNI-HOSTPORT-SETMARK
-A CNI-DN-1 -d 127.0.0.1/32 -p tcp -m tcp --dport 4444 -j DNAT --to-destination 10.200.0.2:8080
-A CNI-HOSTPORT-DNAT -m multiport --dports junk,70000 -j X
`
	want := map[int]bool{22600: true, 8080: true, 9000: true, 9001: true, 9002: true, 53: true}
	if got := parseMappedPorts(rules); !reflect.DeepEqual(got, want) {
		t.Fatalf("parseMappedPorts = %v; want %v", got, want)
	}
	if got := parseMappedPorts(""); len(got) != 0 {
		t.Fatalf("parseMappedPorts of nothing = %v", got)
	}
}
