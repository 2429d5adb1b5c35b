package journal_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/journal"
	"github.com/driftless/driftless/model"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startCluster starts three nats-servers with JetStream, routed to each
// other on loopback (the production layout of docs/operations.md, in
// one process).
func startCluster(t *testing.T) []*server.Server {
	t.Helper()
	clusterPorts := []int{freePort(t), freePort(t), freePort(t)}
	var routes []string
	for _, p := range clusterPorts {
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(p))
	}
	var srvs []*server.Server
	for i, cp := range clusterPorts {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
			JetStream: true, StoreDir: t.TempDir(),
			Cluster: server.ClusterOpts{Name: "driftless", Host: "127.0.0.1", Port: cp},
			Routes:  server.RoutesFromStr(fmt.Sprint(routes[0], ",", routes[1], ",", routes[2])),
		}
		srv, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		srv.Start()
		t.Cleanup(srv.Shutdown)
		srvs = append(srvs, srv)
	}
	for _, s := range srvs {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("a NATS server of the cluster did not start")
		}
	}
	return srvs
}

// TestReplicatedStreams: on a NATS cluster of three with --log-replicas
// 3, lines kept before a server is lost are read back after, and new
// lines are kept meanwhile.
func TestReplicatedStreams(t *testing.T) {
	srvs := startCluster(t)
	urls := fmt.Sprint(srvs[0].ClientURL(), ",", srvs[1].ClientURL(), ",", srvs[2].ClientURL())
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cfg := journal.DefaultConfig()
	cfg.Replicas = 3
	j, err := journal.New(nc, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "a replicated stream", func() error {
		j.Forget()
		return j.EnsureSpace(context.Background(), "dev") // fails until the cluster has a JetStream leader
	})
	publish := func(from, to int) {
		for i := from; i < to; i++ {
			l := model.LogLine{Time: time.Now().UTC(), Space: "dev", App: "hello", Source: model.LogApp, Text: fmt.Sprintf("line %d", i)}
			if err := bus.Publish(nc, bus.LogSubject(l), l); err != nil {
				t.Fatal(err)
			}
		}
		_ = nc.Flush()
	}
	count := func() (int, error) {
		n := 0
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := j.Logs(ctx, journal.LogQuery{Space: "dev", App: "hello", Start: journal.Start{Last: 1000}}, func(model.LogLine) error { n++; return nil })
		return n, err
	}
	publish(0, 100)
	testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, "100 lines kept", func() error {
		if n, err := count(); err != nil || n != 100 {
			return fmt.Errorf("%d lines (%v)", n, err)
		}
		return nil
	})
	// Lose the server leading the stream: with one replica, its lines
	// would be gone.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), bus.LogStream("dev"))
	if err != nil {
		t.Fatal(err)
	}
	info := st.CachedInfo()
	if info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream cluster info %+v, want a leader and 2 replicas", info.Cluster)
	}
	for _, s := range srvs {
		if s.Name() == info.Cluster.Leader {
			s.Shutdown()
		}
	}
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "the lines kept before, read after a server is lost", func() error {
		if n, err := count(); err != nil || n != 100 {
			return fmt.Errorf("%d lines (%v)", n, err)
		}
		return nil
	})
	publish(100, 150)
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "new lines kept by the two servers left", func() error {
		if n, err := count(); err != nil || n != 150 {
			return fmt.Errorf("%d lines (%v)", n, err)
		}
		return nil
	})
}
