package verify

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
)

// TestPAEMessage holds the two-part message to DSSE's own pre-authentication encoding, read
// whole, in small reads, and hashed through WriteTo after a partial read.
func TestPAEMessage(t *testing.T) {
	payloads := []string{"", "x", `{"_type":"https://in-toto.io/Statement/v1"}`, strings.Repeat("payload ", 5000)}
	for _, p := range payloads {
		want := ssldsse.PAE(intotoPayloadType, []byte(p))
		m := pae(intotoPayloadType, []byte(p))
		if got, _ := io.ReadAll(m.reader()); !bytes.Equal(got, want) {
			t.Errorf("pae(%d-byte payload) read whole = %q, want %q", len(p), trim(got), trim(want))
		}
		for _, size := range []int{1, 7, 64} {
			r, buf, got := m.reader(), make([]byte, size), []byte(nil)
			for {
				n, err := r.Read(buf)
				got = append(got, buf[:n]...)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil || n == 0 {
					t.Fatalf("Read(%d bytes) = %d, %v", size, n, err)
				}
			}
			if !bytes.Equal(got, want) {
				t.Errorf("pae(%d-byte payload) in reads of %d = %q, want %q", len(p), size, trim(got), trim(want))
			}
		}
		for _, first := range []int{0, 3, len(want) / 2, len(want)} {
			r := m.reader()
			head := make([]byte, first)
			if _, err := io.ReadFull(r, head); err != nil {
				t.Fatalf("ReadFull(%d) of %d bytes: %v", first, len(want), err)
			}
			var rest bytes.Buffer
			n, err := r.WriteTo(&rest)
			if err != nil || int(n) != len(want)-first || !bytes.Equal(append(head, rest.Bytes()...), want) {
				t.Errorf("pae(%d-byte payload): %d bytes read, then WriteTo = %d, %v; the whole differs from DSSE's PAE", len(p), first, n, err)
			}
			if n, _ := r.WriteTo(&rest); n != 0 {
				t.Errorf("a second WriteTo wrote %d bytes, want 0", n)
			}
		}
	}
}

func trim(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}
