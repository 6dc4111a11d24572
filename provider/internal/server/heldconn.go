package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// Go's TLS writes every record of at most 16 KB with its own write to the socket: a 400 KB
// answer is about 25 system calls. An API connection is a heldConn under the TLS layer, and an
// HTTP/1.1 endpoint holds it while it writes its body, so the records go out in one write
// (two or three with the headers and the tail) when it releases it. Measured on loopback:
// 387 KB in 16 KB writes about 185-235 µs, in one write about 80-120 µs.
//
// Only HTTP/1.1 holds: an HTTP/2 write can wait for the client's flow-control window, which
// the client opens only after it received the held data.

// maxHeldBytes is the most a held connection keeps before it writes anyway (per connection).
const maxHeldBytes = 1 << 20

// heldListener hands out heldConns.
type heldListener struct{ net.Listener }

func (l heldListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &heldConn{Conn: c}, nil
}

// heldConn is a connection whose writes can be held and written out together.
type heldConn struct {
	net.Conn
	mu   sync.Mutex
	held bool
	buf  *[]byte // while held
	err  error   // a failed write of held bytes: every later write fails with it
}

// heldBufs are the held bytes' buffers (*[]byte).
var heldBufs sync.Pool

func (c *heldConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if !c.held {
		return c.Conn.Write(p)
	}
	if len(*c.buf)+len(p) > maxHeldBytes {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// hold keeps the writes that follow until release.
func (c *heldConn) hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held {
		return
	}
	c.buf, _ = heldBufs.Get().(*[]byte)
	if c.buf == nil {
		c.buf = new([]byte)
	}
	c.held = true
}

// release writes what was held in one write and stops holding; the error is the write's.
func (c *heldConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.releaseLocked()
}

func (c *heldConn) releaseLocked() error {
	if !c.held {
		return c.err
	}
	err := c.flushLocked()
	c.held = false
	if cap(*c.buf) <= maxHeldBytes {
		heldBufs.Put(c.buf)
	}
	c.buf = nil
	return err
}

func (c *heldConn) flushLocked() error {
	if len(*c.buf) > 0 {
		_, err := c.Conn.Write(*c.buf)
		*c.buf = (*c.buf)[:0]
		if err != nil {
			c.err = err
		}
	}
	return c.err
}

// Close writes what is held (a TLS close alert), within closeFlushTimeout, then closes. A write
// in flight is not waited for: closing the socket is what ends it (crypto/tls closes the
// connection under it to break a blocked Write).
func (c *heldConn) Close() error {
	if c.mu.TryLock() {
		if c.held && len(*c.buf) > 0 {
			_ = c.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
		}
		_ = c.releaseLocked() // closing regardless; the peer sees a short answer
		c.mu.Unlock()
	}
	return c.Conn.Close()
}

// closeFlushTimeout bounds writing held bytes on Close, as crypto/tls bounds its close alert.
const closeFlushTimeout = 5 * time.Second

type heldKey struct{}

// withHeldConn is the API server's ConnContext: it makes the connection under the TLS layer
// findable by the request's handler.
func withHeldConn(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		if hc, ok := tc.NetConn().(*heldConn); ok {
			return context.WithValue(ctx, heldKey{}, hc)
		}
	}
	return ctx
}

// heldConnOf is the connection of an HTTP/1.1 request to hold while writing its answer, or
// nil.
func heldConnOf(r *http.Request) *heldConn {
	if r.ProtoMajor != 1 {
		return nil
	}
	hc, _ := r.Context().Value(heldKey{}).(*heldConn)
	return hc
}
