package e2e

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/drains"
	"github.com/driftless/driftless/internal/testenv"
)

// drainListener is a syslog drain on 127.0.0.1 (dev's controller runs in
// the host's network namespace): it reads octet-counted RFC 5424
// messages (RFC 6587) from every connection.
func drainListener(t *testing.T) (string, <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	msgs := make(chan string, 10_000)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go func() {
				r := bufio.NewReader(c)
				for {
					n, err := r.ReadString(' ')
					if err != nil {
						return
					}
					size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
					if err != nil || size <= 0 || size > 1<<20 {
						msgs <- "BAD FRAME " + n
						return
					}
					buf := make([]byte, size)
					if _, err := io.ReadFull(r, buf); err != nil {
						return
					}
					select {
					case msgs <- string(buf):
					default:
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), msgs
}

// TestDrains: a user-provided service with a syslog_drain_url, bound to
// hello: the requests made through the router make lines hello prints,
// which reach the drain as RFC 5424 messages (PRI 14, hostname
// space.app, APP-NAME the app, PROCID [APP/PROC/WEB/0]) and are counted
// at dev's /metrics under the drain's hash; the drain URL (a token in it)
// is never in dev's output, the CLI's or the metrics.
func TestDrains(t *testing.T) {
	metrics := freeAddr(t)
	p := startDev(t, "--metrics", metrics)
	addr, msgs := drainListener(t)
	token := fmt.Sprintf("drain-s3cret-%016x", rand.Uint64())
	drainURL := "syslog://" + addr + "/?token=" + token
	p.addHello("apps/hello")
	p.write(map[string]string{
		"apps/hello/manifest.yml": helloWith(1, map[string]string{"GREETING": "Drained"}, "  services: [logs]\n"),
		"services.yml":            "user-provided:\n- name: logs\n  syslog_drain_url: " + drainURL + "\n",
	})
	commit := p.commitAll("hello with a syslog drain")
	p.waitApplied(t, commit, 30*time.Second)
	p.waitServing(t, 120*time.Second, 1, func(info) error { return nil })

	// The drain gets hello's lines from when the binding was seen; ask
	// until a request's line arrives.
	marker := fmt.Sprintf("/drained-%08x", rand.Uint32())
	var got string
	sawRTR := false
	testenv.Eventually(t, 60*time.Second, time.Second, "a request's line at the drain", func() error {
		if code, _, err := p.get(helloHost, marker); err != nil || code != 200 {
			return fmt.Errorf("GET %s: %d %v", marker, code, err)
		}
		for {
			select {
			case m := <-msgs:
				if strings.HasPrefix(m, "BAD FRAME") {
					t.Fatalf("the drain got a bad frame: %q", m)
				}
				if strings.Contains(m, "[RTR/") && strings.Contains(m, "GET "+marker) {
					sawRTR = true // the router's line goes to the drain too
				}
				if strings.Contains(m, "[APP/") && strings.Contains(m, "GET "+marker) {
					got = m
					return nil
				}
			case <-time.After(2 * time.Second):
				return fmt.Errorf("no line with GET %s yet", marker)
			}
		}
	})
	t.Logf("the drain got %q (and the router's line: %v)", got, sawRTR)
	// <14>1 TIMESTAMP dev.hello hello [APP/PROC/WEB/0] - - GET /drained-… from …\n
	fields := strings.SplitN(got, " ", 7)
	if len(fields) != 7 || fields[0] != "<14>1" || fields[2] != "dev.hello" || fields[3] != "hello" ||
		fields[4] != "[APP/PROC/WEB/0]" || fields[5] != "-" || !strings.HasPrefix(fields[6], "- ") || !strings.HasSuffix(got, "\n") {
		t.Fatalf("not an RFC 5424 message of hello: %q", got)
	}
	if _, err := time.Parse(time.RFC3339Nano, fields[1]); err != nil {
		t.Fatalf("time stamp of %q: %v", got, err)
	}

	// The lines sent are counted under the drain's hash, never its URL.
	series := `driftless_drain_lines_sent_total{drain="` + drains.ID(drainURL) + `"} `
	var exposed string
	testenv.Eventually(t, 10*time.Second, 200*time.Millisecond, "the drain's lines counted at /metrics", func() error {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		exposed = string(body)
		for _, l := range strings.Split(exposed, "\n") {
			if v, ok := strings.CutPrefix(l, series); ok {
				if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 1 {
					return nil
				}
			}
		}
		return fmt.Errorf("no %s≥1 at /metrics", series)
	})

	// The drain URL is never logged, nor shown by the CLI or the metrics.
	out, err := p.cliAll("services", "--json")
	if err != nil {
		t.Fatal(err)
	}
	appOut, _ := p.cliAll("app", "hello", "--json")
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	for what, s := range map[string]string{"dev's output": string(data), "driftless services --json": out, "driftless app hello --json": appOut, "/metrics": exposed} {
		if strings.Contains(s, token) {
			t.Errorf("%s shows the drain URL", what)
		}
	}
}
