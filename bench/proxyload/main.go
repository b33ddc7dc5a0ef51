// Command proxyload sends HTTPS requests at a fixed rate, directly or
// through an HTTP proxy (CONNECT, keep-alive tunnels), for a bounded time,
// and prints the latency quantiles it measured from each request's
// intended send time. bench/forward-proxy.sh runs it against thrive's
// forward proxy and mitmproxy on the same origin. Loopback only: it refuses
// any other address.
//
//	go run ./bench/proxyload -url https://127.0.0.1:18443/ -proxy http://127.0.0.1:18090 -cacert ca.pem -rate 300 -duration 10s
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"
)

func main() {
	target := flag.String("url", "", "the https URL to ask")
	proxy := flag.String("proxy", "", "the proxy's URL (none: direct)")
	cacert := flag.String("cacert", "", "PEM roots the client trusts (the proxy's CA, or the origin's)")
	rate := flag.Int("rate", 300, "requests a second")
	dur := flag.Duration("duration", 10*time.Second, "how long to send")
	conns := flag.Int("conns", 32, "at most this many connections")
	name := flag.String("name", "direct", "the name the result line starts with")
	flag.Parse()
	for _, u := range []string{*target, *proxy} {
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if ip := net.ParseIP(p.Hostname()); err != nil || ip == nil || !ip.IsLoopback() {
			log.Fatalf("%s: loopback addresses only", u)
		}
	}
	if *rate <= 0 || *dur <= 0 || *dur > 10*time.Minute {
		log.Fatal("want a positive rate and a duration up to 10m")
	}
	pem, err := os.ReadFile(*cacert)
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		log.Fatalf("%s: no certificate", *cacert)
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots},
		MaxConnsPerHost:     *conns,
		MaxIdleConnsPerHost: *conns,
		IdleConnTimeout:     time.Minute,
	}
	if *proxy != "" {
		pu, err := url.Parse(*proxy)
		if err != nil {
			log.Fatal(err)
		}
		tr.Proxy = http.ProxyURL(pu) // ProxyFromEnvironment would skip loopback
	}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	n := int(dur.Seconds() * float64(*rate))
	lat := make([]time.Duration, n)
	var errs int
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Second / time.Duration(*rate)
	timer := time.NewTimer(0)
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			timer.Reset(d)
			<-timer.C
		}
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, *target, nil)
			resp, err := client.Do(req)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			took := time.Since(due)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs++
				if errs == 1 {
					log.Printf("%s: %v", *name, err)
				}
			}
			lat[i] = took
		})
	}
	wg.Wait()
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(n-1))].Microseconds()) }
	fmt.Printf("%s %d %d %.0f %.0f %.0f\n", *name, n, errs, q(0.5), q(0.9), q(0.99))
}
