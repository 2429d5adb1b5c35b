package main

import (
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// The constant-rate comparison: requests sent at a fixed rate whatever
// the answers (open loop, vegeta), so a slow answer delays no later
// request and the tail is measured as clients see it. wrk's closed loop,
// paced or not, sends less while the proxy is slow.
var (
	rate      = flag.Int("rate", 5000, "requests/s of the constant-rate (open loop) comparison; 0 skips it")
	attackArg = flag.String("attack", "", "(internal) run one constant-rate attack on this address and print its metrics")
)

// rateResult is one constant-rate run's outcome.
type rateResult struct {
	P50, P99, P999, Max time.Duration
	// Success is the share of 2xx answers.
	Success  float64
	Requests uint64
}

// runRate drives addr at -rate for -duration from a child process on
// wrk's core, as wrk is.
func runRate(addr string) rateResult {
	self, err := os.Executable()
	if err != nil {
		fatal("finding the bench binary: %v", err)
	}
	out, err := exec.Command("taskset", "-c", "1", self, "-attack", addr,
		"-rate", strconv.Itoa(*rate), "-duration", duration.String()).Output()
	if err != nil {
		fatal("constant-rate attack on %s: %v", addr, err)
	}
	var r rateResult
	if err := json.Unmarshal(out, &r); err != nil {
		fatal("reading the attack's metrics %q: %v", out, err)
	}
	return r
}

// attack is the child's side of runRate: vegeta at -rate on addr, its
// metrics as JSON on stdout.
func attack(addr string) {
	targeter := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: "http://" + addr + "/",
		Header: http.Header{"Host": []string{host}}})
	// vegeta's own client binds each new connection to 0.0.0.0 before
	// connecting (its LocalAddr): bind picks a port no socket holds,
	// TIME_WAIT ones included, and after the connection-per-request
	// benches that search took 7 ms a connection, and the attack fell
	// seconds behind its rate. This client connects unbound, as wrk does.
	// Workers are bounded by the connections: past them, vegeta started
	// more workers, whose connections found no room among the idle ones
	// and were closed after each request, which slowed it further.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: *connections,
		MaxConnsPerHost:     *connections,
	}}
	n := uint64(*connections)
	attacker := vegeta.NewAttacker(vegeta.Client(client), vegeta.Workers(n), vegeta.MaxWorkers(n))
	var m vegeta.Metrics
	for res := range attacker.Attack(targeter, vegeta.Rate{Freq: *rate, Per: time.Second}, *duration, "bench") {
		m.Add(res)
	}
	m.Close()
	out, err := json.Marshal(rateResult{P50: m.Latencies.P50, P99: m.Latencies.P99, P999: m.Latencies.Quantile(0.999),
		Max: m.Latencies.Max, Success: m.Success, Requests: m.Requests})
	if err != nil {
		fatal("encoding metrics: %v", err)
	}
	fmt.Println(string(out))
}

// medianRate is the run of median p99.
func medianRate(runs []rateResult) rateResult {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b rateResult) int { return cmp.Compare(a.P99, b.P99) })
	return sorted[len(sorted)/2]
}

// rateTable runs the constant-rate comparison over targets, interleaved
// for -rounds, and prints it.
func rateTable(targets []target) {
	if *rate <= 0 {
		return
	}
	runs := map[string][]rateResult{}
	for range *rounds {
		for _, t := range targets {
			runs[t.name] = append(runs[t.name], runRate(t.addr))
		}
	}
	fmt.Printf("\nAt a constant rate: %d requests/s for %s, open loop (vegeta, up to %d connections, on CPU 1); round of median p99 of %d\n\n",
		*rate, *duration, *connections, *rounds)
	fmt.Println("| target | p50 | p99 | p99.9 | max | success | p99 vs nginx | p99.9 vs nginx |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	ngx := medianRate(runs[nginxName])
	for _, t := range targets {
		r := medianRate(runs[t.name])
		fmt.Printf("| %s | %s | %s | %s | %s | %.2f %% | %.2f× | %.2f× |\n", t.name, ms(r.P50), ms(r.P99), ms(r.P999), ms(r.Max),
			100*r.Success, float64(r.P99)/float64(ngx.P99), float64(r.P999)/float64(ngx.P999))
	}
	fmt.Println("\nEvery round (p99, p99.9) at the constant rate:")
	for _, name := range []string{"driftless router", nginxName} {
		fmt.Printf("- %s:", name)
		for _, r := range runs[name] {
			fmt.Printf(" %s %s;", ms(r.P99), ms(r.P999))
		}
		fmt.Println()
	}
}
