package imageref

import "sync"

// Memo remembers Parse results for recently seen references, so a warm batch does not run the
// reference grammar again for every key. It holds at most Max results in two generations: when
// the current one fills up it becomes the previous one and the oldest results are dropped
// (results still in use move back into the current generation). Safe for concurrent use.
type Memo struct {
	max int

	mu        sync.Mutex
	cur, prev map[string]memoEntry
}

type memoEntry struct {
	ref Ref
	err error
}

// NewMemo returns a Memo holding at most limit results (limit ≤ 0: 65536).
func NewMemo(limit int) *Memo {
	if limit <= 0 {
		limit = 1 << 16
	}
	return &Memo{max: limit, cur: map[string]memoEntry{}}
}

// Parse is Parse(s), remembered.
func (m *Memo) Parse(s string) (Ref, error) {
	m.mu.Lock()
	e, ok := m.cur[s]
	if !ok {
		if e, ok = m.prev[s]; ok {
			m.put(s, e)
		}
	}
	m.mu.Unlock()
	if ok {
		return e.ref, e.err
	}
	r, err := Parse(s)
	if len(s) > maxLen {
		return r, err // not worth remembering
	}
	m.mu.Lock()
	m.put(s, memoEntry{ref: r, err: err})
	m.mu.Unlock()
	return r, err
}

func (m *Memo) put(s string, e memoEntry) {
	if len(m.cur) >= m.max/2 {
		m.prev, m.cur = m.cur, make(map[string]memoEntry, len(m.cur))
	}
	m.cur[s] = e
}
