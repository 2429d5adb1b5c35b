package main

// The HTTPS comparison (-https): the driftless router and nginx serving
// the same certificate with the same cipher suites, over TLS 1.3 and 1.2
// with keep-alive, TLS 1.3 with a new (resumed) connection per request,
// and HTTP/2; plain HTTP beside them. Twice: both pinned as in the main
// table (one core each on CPU 0, wrk and the backend on CPU 1), and both
// unpinned as a user runs them (GOMAXPROCS and nginx's worker_processes
// at their defaults, auto).

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	httpsMode     = flag.Bool("https", false, "the HTTPS comparison of the driftless router and nginx (same certificate and cipher suites), pinned and unpinned, instead of the main tables")
	certKey       = flag.String("cert-key", "ecdsa", "the -https certificate's key: ecdsa (P-256) or rsa (2048 bits)")
	phases        = flag.String("phases", "pinned,unpinned", "the -https phases to run")
	modesFlag     = flag.String("modes", "http,tls13,tls12,resume,h2", "the -https modes to run")
	nginxDeferred = flag.Bool("nginx-deferred", false, "-https: nginx's listeners with `deferred` (TCP_DEFER_ACCEPT, as the router's always are); off is nginx's default")
	against       = flag.String("against", "", "-https: compare with a second driftless router built as this binary instead of nginx (an A/B of two builds under the same load, round by round)")
)

// Cipher suites both sides use (Go's own first choices on a CPU with AES
// instructions): nginx is told to use only these.
const (
	tls13Suite = "TLS_AES_128_GCM_SHA256"
	tls12Suite = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
)

// tlsTarget is a proxy serving HTTP and HTTPS.
type tlsTarget struct {
	name, http, https string
	group             int
}

// tlsMode is one way of driving a target.
type tlsMode struct {
	key, name string
	run       func(t tlsTarget, cpu string) wrkResult
}

func runHTTPS() {
	dir := workDir()
	defer stopAll()
	cert, key := writeCert(dir)
	tls12 := filepath.Join(dir, "tls12.cnf")
	// OpenSSL's configuration, read by wrk: offer TLS 1.2 at most.
	write(tls12, "openssl_conf = conf\n[conf]\nssl_conf = ssl\n[ssl]\nsystem_default = sys\n[sys]\nMaxProtocol = TLSv1.2\n")
	all := []tlsMode{
		{"http", "HTTP/1.1, plain, keep-alive", func(t tlsTarget, cpu string) wrkResult {
			return wrk(wrkRun{url: "http://" + t.http + "/", cpu: cpu})
		}},
		{"tls13", "HTTPS, TLS 1.3, keep-alive", func(t tlsTarget, cpu string) wrkResult {
			return wrk(wrkRun{url: "https://" + t.https + "/", cpu: cpu})
		}},
		{"tls12", "HTTPS, TLS 1.2, keep-alive", func(t tlsTarget, cpu string) wrkResult {
			return wrk(wrkRun{url: "https://" + t.https + "/", cpu: cpu, env: []string{"OPENSSL_CONF=" + tls12}})
		}},
		{"resume", "HTTPS, TLS 1.3, a new connection per request (session resumed)", func(t tlsTarget, cpu string) wrkResult {
			return wrk(wrkRun{url: "https://" + t.https + "/", cpu: cpu}, "-H", "Connection: close")
		}},
		{"h2", "HTTP/2 over TLS 1.3 (h2load, 1 stream per connection)", func(t tlsTarget, cpu string) wrkResult {
			return h2load(t.https, cpu)
		}},
	}
	var modes []tlsMode
	for _, m := range all {
		if strings.Contains(","+*modesFlag+",", ","+m.key+",") {
			modes = append(modes, m)
		}
	}
	for _, phase := range strings.Split(*phases, ",") {
		pinned := phase == "pinned"
		loadCPU, proxyCPU, procsEnv, workers := "1", "0", []string{"GOMAXPROCS=1"}, "1"
		if !pinned {
			loadCPU, proxyCPU, procsEnv, workers = "", "", nil, "auto"
		}
		backend, consulAddr, consulPid, _ := startRouted(dir, loadCPU)
		if !pinned {
			_ = exec.Command("taskset", "-apc", "0,1", strconv.Itoa(consulPid)).Run()
		}

		startRouter := func(name, binary, metricsAddr string) tlsTarget {
			t := tlsTarget{name: name, http: freeAddr(), https: freeAddr()}
			t.group = start(dir, proxyCPU, procsEnv, binary, "router", "--http", t.http, "--https", t.https,
				"--cert", cert+":"+key, "--consul", consulAddr, "--access-log", "", "--nats", "", "--log-level", "warn", "--metrics", metricsAddr)
			waitHTTP(t.http, host)
			return t
		}
		metricsAddr := freeAddr()
		dl := startRouter("driftless", *driftless, metricsAddr)
		var ng tlsTarget
		if *against != "" {
			ng = startRouter("baseline", *against, freeAddr())
		} else {
			ng = startTLSNginx(dir, phase, proxyCPU, workers, backend, cert, key)
		}
		targets := []tlsTarget{dl, ng}
		for _, t := range targets {
			for _, v := range []string{"-tls1_3", "-tls1_2"} {
				log.Printf("%s %s: %s", t.name, v, negotiated(t.https, v))
			}
		}

		fmt.Printf("\n%s: wrk -t1 -c%d -d%s (h2load -t1 -c%d -m1 for HTTP/2), %d rounds interleaved (medians), loopback, %s certificate; %s\n\n",
			phase, *connections, *duration, *connections, *rounds, *certKey, map[bool]string{
				true:  "proxies on CPU 0 (driftless GOMAXPROCS=1, nginx 1 worker), wrk and the backend on CPU 1",
				false: "nothing pinned (driftless GOMAXPROCS default, nginx worker_processes auto), 2 CPUs shared with wrk and the backend"}[pinned])
		peer := ng.name
		fmt.Printf("| mode | driftless req/s | %[1]s req/s | ratio | paired | driftless CPU/req | %[1]s CPU/req | ratio | paired | p50 driftless / %[1]s | p99 driftless / %[1]s |\n", peer)
		fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
		for _, m := range modes {
			runs := map[string][]wrkResult{}
			for round := range *rounds {
				for _, t := range targets {
					if t.name == "driftless" && *profile != "" && round == 0 {
						go saveProfile(metricsAddr, fmt.Sprintf("%s.%s.%s", *profile, phase, m.key), *duration-2*time.Second)
					}
					before, backend0 := cpuTime(t.group), cpuTime(backendGroup)
					busy0, idle0 := machineCPU()
					r := m.run(t, loadCPU)
					busy1, idle1 := machineCPU()
					if r.requests > 0 {
						r.cpuPerRequest = (cpuTime(t.group) - before) / time.Duration(r.requests)
						r.backendPerRequest = (cpuTime(backendGroup) - backend0) / time.Duration(r.requests)
						r.restPerRequest = (busy1-busy0)/time.Duration(r.requests) - r.cpuPerRequest
						r.idle = float64(idle1-idle0) / float64(busy1-busy0+idle1-idle0)
					}
					runs[t.name] = append(runs[t.name], r)
				}
			}
			d, n := median(runs["driftless"]), median(runs[peer])
			rpsRatios, cpuRatios := pairedRatios(runs["driftless"], runs[peer])
			fmt.Printf("| %s | %.0f | %.0f | %.2f× | **%.2f×** | %.1f µs | %.1f µs | %.2f× | **%.2f×** | %s / %s | %s / %s |\n", m.name,
				d.rps, n.rps, d.rps/n.rps, medianOf(rpsRatios), us(d.cpuPerRequest), us(n.cpuPerRequest),
				float64(d.cpuPerRequest)/float64(n.cpuPerRequest), medianOf(cpuRatios), ms(d.p50), ms(n.p50), ms(d.p99), ms(n.p99))
			fmt.Printf("  (rounds, req/s driftless / %s:", peer)
			for i := range runs["driftless"] {
				fmt.Printf(" %.0f/%.0f (%.2f×, CPU %.2f×)", runs["driftless"][i].rps, runs[peer][i].rps, rpsRatios[i], cpuRatios[i])
			}
			fmt.Printf("; the rest of the machine's CPU per request (the backend's), and the idle share:")
			for i := range runs["driftless"] {
				d, n := runs["driftless"][i], runs[peer][i]
				fmt.Printf(" %.1f/%.1f µs (%.1f/%.1f) %.0f/%.0f %%", us(d.restPerRequest), us(n.restPerRequest),
					us(d.backendPerRequest), us(n.backendPerRequest), 100*d.idle, 100*n.idle)
			}
			fmt.Println(")")
		}
		stopAll()
	}
}

// startTLSNginx starts nginx serving HTTP and HTTPS (HTTP/2 too) with
// the forwarding headers and request id the router adds, on cpu with
// workers worker processes.
func startTLSNginx(dir, phase, cpu, workers, backend, cert, key string) tlsTarget {
	t := tlsTarget{name: "nginx", http: freeAddr(), https: freeAddr()}
	name := "nginx-tls-" + phase
	conf := filepath.Join(dir, name+".conf")
	deferred := ""
	if *nginxDeferred {
		deferred = " deferred"
	}
	write(conf, fmt.Sprintf(`worker_processes %s;
daemon off;
pid %s/%s.pid;
error_log %s/%s-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  # Not 1,000 (the default): h2load does not reconnect after nginx's GOAWAY.
  keepalive_requests 1000000;
  upstream app { server %s; keepalive 128; }
  ssl_certificate %s;
  ssl_certificate_key %s;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_ciphers %s;
  ssl_conf_command Ciphersuites %s;
  ssl_session_cache shared:SSL:10m;
  ssl_session_tickets on;
  server {
    listen %s%s;
    listen %s ssl http2%s;
    server_name %s;
    location / {
      proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr; proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Request-Id $request_id;
      add_header X-Request-Id $request_id;
    }
  }
}
`, workers, dir, name, dir, name, backend, cert, key, tls12Suite, tls13Suite, t.http, deferred, t.https, deferred, host))
	t.group = start(dir, cpu, nil, "nginx", "-c", conf, "-e", filepath.Join(dir, name+"-error.log"))
	waitHTTP(t.http, host)
	return t
}

// writeCert writes a self-signed certificate for the bench's host and
// 127.0.0.1 (key: -cert-key) and returns the files.
func writeCert(dir string) (certFile, keyFile string) {
	var pub, priv any
	switch *certKey {
	case "ecdsa":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			fatal("%v", err)
		}
		pub, priv = &k.PublicKey, k
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			fatal("%v", err)
		}
		pub, priv = &k.PublicKey, k
	default:
		fatal("-cert-key %q: want ecdsa or rsa", *certKey)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host},
		DNSNames: []string{host}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		fatal("%v", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		fatal("%v", err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	write(certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	write(keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})))
	return certFile, keyFile
}

var cipherRE = regexp.MustCompile(`(?m)^\s*(Protocol|Cipher)\s*:\s*(\S+)`)

// negotiated is the protocol and cipher suite addr agrees on with an
// OpenSSL client (openssl s_client, version: -tls1_3 or -tls1_2).
func negotiated(addr, version string) string {
	cmd := exec.Command("openssl", "s_client", "-connect", addr, "-servername", host, version)
	cmd.Stdin = strings.NewReader("")
	out, _ := cmd.CombinedOutput()
	var parts []string
	for _, m := range cipherRE.FindAllStringSubmatch(string(out), -1) {
		parts = append(parts, m[2])
	}
	return strings.Join(parts, " ")
}

var (
	h2RateRE = regexp.MustCompile(`finished in [0-9.]+s, ([0-9.]+) req/s`)
	h2ReqRE  = regexp.MustCompile(`requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded`)
	h2TimeRE = regexp.MustCompile(`time for request:\s+\S+\s+\S+\s+(\S+)`)
)

// h2load drives addr over HTTP/2 with h2load (nghttp2-client): the mean
// request time stands in for both percentiles (h2load gives none).
func h2load(addr, cpu string) wrkResult {
	args := []string{"-t1", "-c" + strconv.Itoa(*connections), "-m1", "-D", strconv.Itoa(int(duration.Seconds())),
		"-H", ":authority: " + host, "https://" + addr + "/"}
	cmd := exec.Command("h2load", args...)
	if cpu != "" {
		cmd = exec.Command("taskset", append([]string{"-c", cpu, "h2load"}, args...)...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		fatal("h2load %s: %v\n%s", addr, err, out)
	}
	s := string(out)
	r := readResult(s, h2RateRE, h2ReqRE)
	if m := h2TimeRE.FindStringSubmatch(s); m != nil {
		r.p50 = parseLatency(m[1])
		r.p99 = r.p50
	}
	if r.requests == 0 {
		log.Printf("h2load against %s: nothing succeeded:\n%s", addr, s)
	}
	return r
}

// pairedRatios are driftless's requests/s and CPU per request over
// nginx's, round by round. The rounds are interleaved, so the two of a
// round ran under the same conditions: the median of these ratios is
// not moved by the machine speeding up or slowing down between rounds,
// as the ratio of the two medians (taken from different rounds) is.
func pairedRatios(d, n []wrkResult) (rps, cpu []float64) {
	for i := range min(len(d), len(n)) {
		rps = append(rps, d[i].rps/n[i].rps)
		cpu = append(cpu, float64(d[i].cpuPerRequest)/float64(n[i].cpuPerRequest))
	}
	return rps, cpu
}

// medianOf is the median of v (0 for none).
func medianOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(v))
	return s[len(s)/2]
}
