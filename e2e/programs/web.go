// A small web server and client for the node tests, built static and shipped
// as a one-file image (no shell, no busybox).
//
//	web serve ADDR          answers "hello from $HOSTNAME" on /, "ok" on /healthz
//	web check TARGET...     for each TARGET, retried for up to 60 s: a URL is
//	                        fetched, anything else is resolved through DNS;
//	                        writes "TARGET=result" lines to the termination
//	                        log and exits 0, or exits 1 naming what failed
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: web serve ADDR | web check TARGET...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2])
	case "check":
		check(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

func serve(addr string) {
	host, _ := os.Hostname()
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "ok")
	})
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from %s", host)
	})
	if err := http.ListenAndServe(addr, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func check(targets []string) {
	var lines []string
	for _, target := range targets {
		result, err := retry(target)
		if err != nil {
			finish(append(lines, fmt.Sprintf("%s FAILED: %v", target, err)), 1)
		}
		lines = append(lines, target+"="+result)
	}
	finish(lines, 0)
}

func retry(target string) (string, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		result, err := once(target)
		if err == nil || time.Now().After(deadline) {
			return result, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func once(target string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !strings.HasPrefix(target, "http://") {
		addrs, err := net.DefaultResolver.LookupHost(ctx, target)
		return strings.Join(addrs, ","), err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return string(body), nil
}

// finish writes lines to the termination log (shown in the Pod's status)
// and stdout, then exits with code.
func finish(lines []string, code int) {
	text := strings.Join(lines, "\n")
	fmt.Println(text)
	_ = os.WriteFile("/dev/termination-log", []byte(text), 0o644)
	os.Exit(code)
}
