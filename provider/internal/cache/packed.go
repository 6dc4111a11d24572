package cache

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"slices"
	"sync"
)

// Packer stores encoded answers (JSON) compactly for a cache that holds tens of thousands of
// them. Most of an answer's bytes repeat across answers (field names, media types, key IDs,
// authority names, the JSON of empty sections) or within one (the digest is also the tag's
// digest); only the image name and its digest are its own. Pack splits an answer at every '"',
// keeps each piece once — in a table shared by every answer once a piece has been seen in two
// answers, or as a reference to an earlier piece of the same answer — and stores the rest as
// it is. A sha256 digest in lower-case hex is kept as its 32 bytes, and a path whose directory
// (up to the last '/') is shared keeps only its last element. Unpack puts the bytes back exactly:
// packing is lossless for any input, JSON or not.
//
// Serving a packed answer costs one allocation and a copy of its bytes, no decoding; memory per
// cached /v1/verify answer drops from about 640 to about 160 bytes (see docs/performance.md).
//
// The shared table is bounded (MaxShared pieces, each at most maxSharedPiece bytes) and never
// shrinks: a piece is shared only after two answers contain it, so unique values (image names,
// digests) stay in their answers; once the table is full, new pieces stay in their answers too.
// Safe for concurrent use.
type Packer struct {
	maxShared int

	mu     sync.RWMutex
	ids    map[string]int // shared piece → index in shared
	shared []string
	seen   map[string]struct{} // pieces seen once, candidates for sharing (bounded)
}

// DefaultMaxShared bounds the shared table of NewPacker(0).
const DefaultMaxShared = 4096

const (
	maxSharedPiece = 256 // longer pieces are never shared
	maxSeen        = 16384
	minShared      = 1 // shorter pieces (empty ones) are stored as they are
	minBack        = 8 // shorter pieces are not looked for earlier in the answer

	// A piece is one header byte, op<<5 | v, where v < 31 is the argument, or 31 when the
	// argument follows as a uvarint; then, for a literal, its bytes.
	opLiteral = 0 // argument: length; the bytes follow
	opShared  = 1 // argument: index into the shared table
	opBack    = 2 // argument: offset of an earlier piece in the unpacked answer; a uvarint length follows
	opDigest  = 3 // "sha256:" and 64 lower-case hex digits; the 32 bytes follow (argument 0)
	opPrefix  = 4 // argument: index into the shared table; the next op continues this piece
	opShift   = 5
	argMax    = 31
)

// NewPacker returns a Packer whose shared table holds at most maxShared pieces (0: the default).
func NewPacker(maxShared int) *Packer {
	if maxShared <= 0 {
		maxShared = DefaultMaxShared
	}
	return &Packer{maxShared: maxShared, ids: map[string]int{}, seen: map[string]struct{}{}}
}

// Packed is a packed answer: Unpack returns its bytes. The zero Packed is empty (IsZero).
type Packed struct {
	p *Packer
	b []byte // uvarint length unpacked, then the pieces
}

// IsZero reports the zero Packed, which holds nothing (not even an empty answer).
func (k Packed) IsZero() bool { return k.b == nil }

// Size is the number of bytes the packed form holds (without the shared table).
func (k Packed) Size() int { return cap(k.b) }

// Len is the length of the unpacked answer.
func (k Packed) Len() int {
	n, _ := binary.Uvarint(k.b)
	if n > math.MaxInt32 {
		return 0 // never written by Pack
	}
	return int(n)
}

// Pack packs b (which it does not keep). A nil Packer shares nothing (pieces repeated within b
// are still stored once).
func (p *Packer) Pack(b []byte) Packed {
	out := binary.AppendUvarint(make([]byte, 0, 64), uint64(len(b)))
	var promote []string
	at := 0 // offset of piece in b
	for _, piece := range splitQuotes(b) {
		off := at
		at += len(piece) + 1
		if len(piece) < minShared {
			out = appendLiteral(out, piece)
			continue
		}
		if j := earlier(b[:off], piece); j >= 0 {
			out = appendOp(out, opBack, uint64(j))
			out = binary.AppendUvarint(out, uint64(len(piece)))
			continue
		}
		id, ok := 0, false
		if p != nil {
			p.mu.RLock()
			id, ok = p.ids[string(piece)]
			p.mu.RUnlock()
		}
		switch {
		case ok && id >= 0:
			out = appendOp(out, opShared, uint64(id))
		case isDigest(piece):
			// Unique per image: 32 bytes instead of 71, never shared.
			out = appendOp(out, opDigest, 0)
			out = append(out, make([]byte, sha256Len)...)
			hex.Decode(out[len(out)-sha256Len:], piece[len(sha256Prefix):]) //nolint:errcheck // isDigest checked the hex
		default:
			// A path: its directory (up to the last '/') is often shared ("registry/team/").
			if i := bytes.LastIndexByte(piece, '/'); i > 0 && i < len(piece)-1 && p != nil {
				dir := piece[:i+1]
				p.mu.RLock()
				pid, pok := p.ids[string(dir)]
				p.mu.RUnlock()
				if pok && pid >= 0 {
					out = appendOp(out, opPrefix, uint64(pid))
					out = appendLiteral(out, piece[i+1:])
					continue
				}
				promote = append(promote, string(dir))
			}
			out = appendLiteral(out, piece)
			if p != nil && len(piece) <= maxSharedPiece {
				promote = append(promote, string(piece))
			}
		}
	}
	if len(promote) > 0 {
		p.learn(promote)
	}
	// One allocation of the exact size: the cache keeps this slice.
	return Packed{p: p, b: bytes.Clone(out)}
}

// learn shares the pieces seen before in another answer and remembers the others as seen.
func (p *Packer) learn(pieces []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range pieces {
		if len(p.shared) >= p.maxShared {
			return
		}
		if _, ok := p.ids[s]; ok {
			continue
		}
		if _, ok := p.seen[s]; ok {
			delete(p.seen, s)
			p.ids[s] = len(p.shared)
			p.shared = append(p.shared, s)
			continue
		}
		if len(p.seen) >= maxSeen {
			clear(p.seen) // bounded: a piece forgotten here is shared a little later
		}
		p.seen[s] = struct{}{}
	}
}

// errCorrupt is returned for bytes that Pack did not produce (a bug, never the input's fault).
var errCorrupt = errors.New("cache: corrupt packed answer")

// Unpack returns the answer's bytes in a new slice (nil for the zero Packed).
func (k Packed) Unpack() ([]byte, error) {
	if k.b == nil {
		return nil, nil
	}
	return k.AppendUnpacked(make([]byte, 0, k.Len()))
}

// AppendUnpacked appends the answer's bytes to dst.
func (k Packed) AppendUnpacked(dst []byte) ([]byte, error) {
	if k.b == nil {
		return dst, nil
	}
	total, n := binary.Uvarint(k.b)
	if n <= 0 || total > 1<<31 {
		return nil, errCorrupt
	}
	start := len(dst)
	out := slices.Grow(dst, int(total))
	var shared []string
	b := k.b[n:]
	for first, joined := true, false; len(b) > 0; first = false {
		if !first && !joined {
			out = append(out, '"')
		}
		op, v := b[0]>>opShift, uint64(b[0]&argMax)
		joined = op == opPrefix
		b = b[1:]
		if v == argMax {
			var n int
			if v, n = binary.Uvarint(b); n <= 0 {
				return nil, errCorrupt
			}
			b = b[n:]
		}
		switch op {
		case opLiteral:
			if uint64(len(b)) < v {
				return nil, errCorrupt
			}
			out = append(out, b[:v]...)
			b = b[v:]
		case opShared, opPrefix:
			if k.p == nil {
				return nil, errCorrupt
			}
			if shared == nil {
				k.p.mu.RLock()
				shared = k.p.shared // append-only: this prefix never changes
				k.p.mu.RUnlock()
			}
			if v >= uint64(len(shared)) {
				return nil, errCorrupt
			}
			out = append(out, shared[v]...)
		case opBack:
			l, n := binary.Uvarint(b)
			un := out[start:] // this answer's bytes so far
			if n <= 0 || v+l > uint64(len(un)) {
				return nil, errCorrupt
			}
			b = b[n:]
			out = append(out, un[v:v+l]...)
		case opDigest:
			if len(b) < sha256Len {
				return nil, errCorrupt
			}
			out = append(out, sha256Prefix...)
			out = hex.AppendEncode(out, b[:sha256Len])
			b = b[sha256Len:]
		default:
			return nil, errCorrupt
		}
	}
	if uint64(len(out[start:])) != total {
		return nil, errCorrupt
	}
	return out, nil
}

func appendOp(out []byte, op byte, arg uint64) []byte {
	if arg < argMax {
		return append(out, op<<opShift|byte(arg))
	}
	out = append(out, op<<opShift|argMax)
	return binary.AppendUvarint(out, arg)
}

const (
	sha256Prefix = "sha256:"
	sha256Len    = 32
)

// isDigest reports "sha256:" followed by exactly 64 lower-case hex digits (what hex encoding
// gives back byte for byte).
func isDigest(p []byte) bool {
	if len(p) != len(sha256Prefix)+2*sha256Len || !bytes.HasPrefix(p, []byte(sha256Prefix)) {
		return false
	}
	for _, c := range p[len(sha256Prefix):] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func appendLiteral(out, piece []byte) []byte {
	return append(appendOp(out, opLiteral, uint64(len(piece))), piece...)
}

// splitQuotes splits b at every '"' (b is the pieces joined with '"').
func splitQuotes(b []byte) [][]byte { return bytes.Split(b, []byte{'"'}) }

// earlier returns the offset of a whole piece equal to piece in prefix (pieces joined with
// '"', ending with one), or -1.
func earlier(prefix, piece []byte) int {
	if len(piece) < minBack {
		return -1
	}
	for from := 0; ; {
		i := bytes.Index(prefix[from:], piece)
		if i < 0 {
			return -1
		}
		i += from
		end := i + len(piece)
		if (i == 0 || prefix[i-1] == '"') && end < len(prefix) && prefix[end] == '"' {
			return i
		}
		from = i + 1
	}
}
