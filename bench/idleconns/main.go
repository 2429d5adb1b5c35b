// Command idleconns opens idle connections to a router (or any HTTP
// server) for bench/router's memory measurements (docs/benchmarks.md,
// runs Q and R): each connection makes one GET, over HTTP/2 or HTTP/1.1
// on TLS or HTTP/1.1 in the clear, then stays open, doing nothing, until -hold has passed. It
// prints "ok N", N the connections whose request succeeded, once all are
// open. Loopback or test-made addresses only.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	addr := flag.String("addr", "", "the server's address, host:port (HTTPS unless -plain)")
	n := flag.Int("n", 1000, "how many connections")
	h2 := flag.Bool("h2", true, "HTTP/2 (ALPN h2); false: HTTP/1.1 with keep-alive")
	hold := flag.Duration("hold", 30*time.Second, "how long the connections stay open once all are")
	host := flag.String("host", "bench.apps.localhost", "the requests' host (and SNI)")
	plain := flag.Bool("plain", false, "HTTP/1.1 in the clear (-h2 is ignored)")
	flag.Parse()
	scheme := "https"
	if *plain {
		scheme, *h2 = "http", false
	}
	var protocols http.Protocols
	protocols.SetHTTP1(!*h2)
	protocols.SetHTTP2(*h2)
	tr := &http.Transport{Protocols: &protocols, TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: *host}}
	ctx := context.Background()
	req, err := http.NewRequest("GET", scheme+"://"+*host+"/", nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var open []*http.ClientConn // open until the end
	for range *n {
		cc, err := tr.NewClientConn(ctx, scheme, *addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			continue
		}
		resp, err := cc.RoundTrip(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			open = append(open, cc)
		}
	}
	fmt.Println("ok", len(open))
	time.Sleep(*hold)
	for _, cc := range open {
		_ = cc.Close()
	}
}
