package policy

import (
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// ruleCache is the cache of rule and function results of one evaluation, in
// place of OPA's default. OPA's cache is a tree of hash maps that every
// evaluation builds anew, which makes it one of the largest allocations of
// an evaluation. ruleCache keeps its entries in slices and a hash index
// that are cleared and reused by the next evaluation, so a warm cache
// allocates only when an evaluation caches more than any before it.
//
// A ruleCache serves one evaluation at a time. It implements
// topdown.VirtualCache.
type ruleCache struct {
	frames []*ruleCacheFrame
	depth  int
	// refs holds copies of the cached refs: topdown may reuse the slice it
	// passes to Put.
	refs []*ast.Term
}

// ruleCacheFrame is the entries of one scope. Each with statement opens a
// new scope.
type ruleCacheFrame struct {
	// index maps a ref's hash to 1 + the position of the last entry with
	// that hash.
	index   map[int]int32
	entries []ruleCacheEntry
}

type ruleCacheEntry struct {
	ref       ast.Ref
	value     *ast.Term
	undefined bool
	// next is 1 + the position of the previous entry with the same hash,
	// or 0.
	next int32
}

var _ topdown.VirtualCache = (*ruleCache)(nil)

var ruleCaches = sync.Pool{New: func() any { return newRuleCache() }}

func newRuleCache() *ruleCache {
	c := &ruleCache{}
	c.Push()
	return c
}

// reset empties the cache for the next evaluation and drops its references
// to the values of the last one.
func (c *ruleCache) reset() {
	for _, f := range c.frames[:c.depth] {
		f.clear()
	}
	c.depth = 0
	clear(c.refs)
	c.refs = c.refs[:0]
	c.Push()
}

func (f *ruleCacheFrame) clear() {
	clear(f.index)
	clear(f.entries)
	f.entries = f.entries[:0]
}

// Push opens a new, empty scope.
func (c *ruleCache) Push() {
	if c.depth == len(c.frames) {
		c.frames = append(c.frames, &ruleCacheFrame{index: map[int]int32{}})
	}
	c.depth++
}

// Pop closes the innermost scope and discards its entries.
func (c *ruleCache) Pop() {
	if c.depth == 0 {
		return
	}
	c.depth--
	c.frames[c.depth].clear()
}

func (c *ruleCache) top() *ruleCacheFrame {
	return c.frames[c.depth-1]
}

func (f *ruleCacheFrame) find(ref ast.Ref, hash int) *ruleCacheEntry {
	for i := f.index[hash]; i != 0; {
		e := &f.entries[i-1]
		if e.ref.Equal(ref) {
			return e
		}
		i = e.next
	}
	return nil
}

// Get returns the cached value of ref. A nil value with true means ref is
// known to be undefined, and nil with false means nothing is cached.
func (c *ruleCache) Get(ref ast.Ref) (*ast.Term, bool) {
	e := c.top().find(ref, ref.Hash())
	if e == nil {
		return nil, false
	}
	if e.undefined {
		return nil, true
	}
	return e.value, false
}

// Put caches value for ref. A nil value records that ref is undefined.
func (c *ruleCache) Put(ref ast.Ref, value *ast.Term) {
	f := c.top()
	hash := ref.Hash()
	e := f.find(ref, hash)
	if e == nil {
		start := len(c.refs)
		c.refs = append(c.refs, ref...)
		f.entries = append(f.entries, ruleCacheEntry{
			ref:  ast.Ref(c.refs[start:len(c.refs):len(c.refs)]),
			next: f.index[hash],
		})
		f.index[hash] = int32(len(f.entries))
		e = &f.entries[len(f.entries)-1]
	}
	if value != nil {
		e.value = value
	} else {
		e.undefined = true
	}
}

// Keys returns the refs with a cached value in the innermost scope.
func (c *ruleCache) Keys() []ast.Ref {
	f := c.top()
	keys := make([]ast.Ref, 0, len(f.entries))
	for i := range f.entries {
		if f.entries[i].value != nil {
			keys = append(keys, f.entries[i].ref)
		}
	}
	return keys
}
