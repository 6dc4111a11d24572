package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/pki"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// tcpPair is a connected loopback TCP pair: the accepted side as a heldConn, and the dialled
// side.
func tcpPair(t *testing.T) (*heldConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	c, err := heldListener{ln}.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*heldConn), peer
}

// TestHeldConn: writes pass through unless held; held writes reach the peer, in order and
// complete, when released (or when they pass maxHeldBytes, or on Close); a failed write of
// held bytes fails every later write.
func TestHeldConn(t *testing.T) {
	t.Run("held until released", func(t *testing.T) {
		c, peer := tcpPair(t)
		if _, err := c.Write([]byte("open|")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 5)
		if _, err := io.ReadFull(peer, got); err != nil || string(got) != "open|" {
			t.Fatalf("unheld write: peer read %q, %v", got, err)
		}
		big := make([]byte, 3*maxHeldBytes/2) // past the bound: written out while still held
		if _, err := rand.Read(big); err != nil {
			t.Fatal(err)
		}
		parts := [][]byte{[]byte("a"), big[:maxHeldBytes/2], big[maxHeldBytes/2 : maxHeldBytes-1], big[maxHeldBytes-1:], []byte("z")}
		want := bytes.Join(parts, nil)
		read := make(chan []byte)
		go func() { // reads as the held bytes arrive, so a write past the bound does not block
			b := make([]byte, len(want))
			_, _ = io.ReadFull(peer, b)
			read <- b
		}()
		c.hold()
		for _, p := range parts {
			if n, err := c.Write(p); n != len(p) || err != nil {
				t.Fatalf("held Write = %d, %v; want %d, nil", n, err, len(p))
			}
		}
		if err := c.release(); err != nil {
			t.Fatal(err)
		}
		if got := <-read; !bytes.Equal(got, want) {
			t.Fatalf("peer read %d bytes differing from the %d written", len(got), len(want))
		}
		if _, err := c.Write([]byte("after")); err != nil {
			t.Fatal(err)
		}
		got = make([]byte, 5)
		if _, err := io.ReadFull(peer, got); err != nil || string(got) != "after" {
			t.Fatalf("write after release: peer read %q, %v", got, err)
		}
	})
	t.Run("nothing sent while held", func(t *testing.T) {
		c, peer := tcpPair(t)
		c.hold()
		if _, err := c.Write([]byte("held")); err != nil {
			t.Fatal(err)
		}
		_ = peer.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		var ne net.Error
		if n, err := peer.Read(make([]byte, 8)); !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("peer read %d bytes, %v while held; want a timeout with nothing read", n, err)
		}
		_ = peer.SetReadDeadline(time.Time{})
		if err := c.release(); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4)
		if _, err := io.ReadFull(peer, got); err != nil || string(got) != "held" {
			t.Fatalf("after release: peer read %q, %v", got, err)
		}
	})
	t.Run("close writes what is held", func(t *testing.T) {
		c, peer := tcpPair(t)
		c.hold()
		if _, err := c.Write([]byte("alert")); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(peer)
		if err != nil || string(got) != "alert" {
			t.Fatalf("peer read %q, %v; want alert then EOF", got, err)
		}
	})
	t.Run("close ends a blocked write", func(t *testing.T) {
		c, _ := tcpPair(t) // the peer never reads: the write blocks once the socket buffers fill
		done := make(chan error, 1)
		go func() {
			_, err := c.Write(make([]byte, 256<<20))
			done <- err
		}()
		time.Sleep(100 * time.Millisecond) // the write is (most likely) blocked by now
		closed := make(chan error, 1)
		go func() { closed <- c.Close() }()
		for _, ch := range []chan error{closed, done} {
			select {
			case err := <-ch:
				if ch == done && err == nil {
					t.Errorf("Write after Close = nil error, want the closed connection's")
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Close did not end a blocked Write")
			}
		}
	})
	t.Run("failed write is sticky", func(t *testing.T) {
		c, _ := tcpPair(t)
		_ = c.Conn.Close()
		c.hold()
		if _, err := c.Write([]byte("lost")); err != nil {
			t.Fatalf("held Write = %v, want nil (nothing written yet)", err)
		}
		err := c.release()
		if err == nil {
			t.Fatal("release on a closed connection = nil error, want the write's error")
		}
		if _, err2 := c.Write([]byte("more")); !errors.Is(err2, err) {
			t.Errorf("Write after a failed release = %v, want %v", err2, err)
		}
	})
}

// TestLargeAnswerOverHeldConn: an answer larger than maxHeldBytes reaches an HTTP/1.1 and an
// HTTP/2 client over mTLS byte for byte as EncodeResponse writes it, several times over one
// kept-alive connection each.
func TestLargeAnswerOverHeldConn(t *testing.T) {
	keys := make([]string, 150)
	values := make(map[string]wire.Encoded, len(keys))
	for i := range keys {
		keys[i] = fmt.Sprintf("registry.example/app-%d:v1", i)
		values[keys[i]] = wire.Encoded(fmt.Sprintf(`{"image":%q,"pad":%q}`, keys[i], strings.Repeat(fmt.Sprintf("%x", i%16), 8<<10)))
	}
	lk := func(_ context.Context, ks []string) []wire.Item {
		items := make([]wire.Item, len(ks))
		for i, k := range ks {
			items[i] = wire.Item{Key: k, Value: values[k]}
		}
		return items
	}
	want, err := EncodeResponse(lk(context.Background(), keys), false, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(want) <= maxHeldBytes {
		t.Fatalf("answer of %d bytes, want more than maxHeldBytes %d", len(want), maxHeldBytes)
	}
	d := defaultDeps(lk)
	d.MaxKeys = 1000
	d.MaxRequestBytes = 1 << 20
	s := startStack(t, d)
	kp, err := s.ca.ClientCert("gatekeeper")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pki.ClientTLSConfig(s.ca, kp)
	if err != nil {
		t.Fatal(err)
	}
	body := requestBody(t, keys...)
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: cfg.Clone(), ForceAttemptHTTP2: h2}
		c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		for round := range 3 {
			resp, err := c.Post(s.apiURL+"/v1/resolve", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("h2=%v round %d: status %d, %v", h2, round, resp.StatusCode, err)
			}
			if wantProto := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != wantProto {
				t.Errorf("h2=%v: answered over %s", h2, resp.Proto)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("h2=%v round %d: %d bytes differing from EncodeResponse's %d", h2, round, len(got), len(want))
			}
		}
		tr.CloseIdleConnections()
	}
}
