package hatest

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every connection with what it reads.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func TestDelayProxy(t *testing.T) {
	p, err := newDelayProxy(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Generous bound that only catches a hang.
	_ = c.SetDeadline(time.Now().Add(time.Minute))

	t.Run("bytes arrive whole and in order both ways", func(t *testing.T) {
		want := make([]byte, 1<<20)
		_, _ = rand.Read(want)
		go func() { _, _ = c.Write(want) }()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("echoed bytes differ")
		}
	})

	t.Run("a round trip takes at least twice the delay", func(t *testing.T) {
		const delay = 20 * time.Millisecond
		p.delay.Store(int64(delay))
		defer p.delay.Store(0)
		start := time.Now()
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		// A lower bound only: sleeping never ends early, so this cannot
		// fail on a slow machine, and fails if the delay is not applied.
		if rtt := time.Since(start); rtt < 2*delay {
			t.Fatalf("round trip %s, want at least %s", rtt, 2*delay)
		}
	})

	t.Run("Close ends forwarded connections", func(t *testing.T) {
		p.Close()
		if _, err := io.ReadFull(c, make([]byte, 1)); err == nil {
			t.Fatal("read after Close succeeded")
		}
	})
}
