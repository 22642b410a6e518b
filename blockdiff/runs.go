package blockdiff

import (
	"fmt"
	"io"
)

// runCursor walks an iterator that can hand out whole runs of one kind
// (a [Reader] or a [Manifest] iterator at its start), so that Diff works a
// run at a time instead of an entry at a time.
type runCursor struct {
	side    string
	n       int64 // blocks in the iterator
	i       int64 // index of the next block
	k       Kind
	left    int64
	digs    []Digest // digests of the rest of a data run
	scratch []Digest

	r  *Reader
	m  *Manifest
	mi *manifestIter // advanced along with i
}

// newRunCursor returns a cursor for it, or nil if it cannot give runs.
func newRunCursor(it Iterator, side string) *runCursor {
	switch v := it.(type) {
	case *Reader:
		if v.next == 0 && v.runLeft == 0 && v.err == nil {
			return &runCursor{side: side, n: v.n, r: v}
		}
	case *manifestIter:
		if v.i == 0 {
			return &runCursor{side: side, n: v.m.Len(), m: v.m, mi: v}
		}
	}
	return nil
}

// fill loads the next run when the current one is used up. At the end it
// returns io.EOF, after a Reader verified its trailer.
func (c *runCursor) fill() error {
	if c.left > 0 {
		return nil
	}
	if c.r != nil {
		k, cnt, digs, err := c.r.nextRun()
		if err == io.EOF {
			if c.i != c.n {
				return fmt.Errorf("blockdiff: diff: %s ended at block %d of %d: %w", c.side, c.i, c.n, ErrCorrupt)
			}
			return io.EOF
		}
		if err != nil {
			return fmt.Errorf("blockdiff: diff: %s: %w", c.side, err)
		}
		c.k, c.left = k, cnt
		if k == Data {
			c.scratch = c.scratch[:0]
			for len(digs) > 0 {
				c.scratch = append(c.scratch, Digest(digs[:DigestSize]))
				digs = digs[DigestSize:]
			}
			c.digs = c.scratch
		}
		return nil
	}
	if c.i >= c.n {
		return io.EOF
	}
	k := c.m.kinds[c.i]
	end := c.n
	if k == Data { // data runs stop at a page end: digests come from one page
		end = min(c.n, (c.i/digestPage+1)*digestPage)
	}
	j := c.i + 1
	for j < end && c.m.kinds[j] == k {
		j++
	}
	c.k, c.left = k, j-c.i
	if k == Data {
		off := c.i % digestPage
		c.digs = c.m.pages[c.i/digestPage][off : off+c.left]
	}
	return nil
}

// skip consumes cnt blocks of the current run.
func (c *runCursor) skip(cnt int64) {
	c.i += cnt
	c.left -= cnt
	if c.mi != nil {
		c.mi.i = c.i
	}
	if c.k == Data {
		c.digs = c.digs[cnt:]
	}
}

// drain reads the cursor to its end.
func (c *runCursor) drain() error {
	for {
		if err := c.fill(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		c.skip(c.left)
	}
}

// diffRuns is Diff over two run cursors.
func (b *builder) diffRuns(bc, tc *runCursor) error {
	s := &b.cs.Stats
	for tc.i < tc.n {
		if err := tc.fill(); err != nil {
			if err == io.EOF {
				err = fmt.Errorf("blockdiff: diff: target ended at block %d of %d: %w", tc.i, tc.n, ErrCorrupt)
			}
			return err
		}
		cnt := tc.left
		bk := Hole // past the base's end
		if bc.i < bc.n {
			if err := bc.fill(); err != nil {
				if err == io.EOF {
					err = fmt.Errorf("blockdiff: diff: base ended at block %d of %d: %w", bc.i, bc.n, ErrCorrupt)
				}
				return err
			}
			bk = bc.k
			cnt = min(cnt, bc.left)
		}
		i := tc.i
		switch {
		case tc.k == Data && bk == Data:
			td, bd := tc.digs[:cnt], bc.digs[:cnt]
			for j := range td {
				if !digestEq(&td[j], &bd[j]) {
					b.changed(i+int64(j), &td[j])
				}
			}
		case tc.k == Data:
			for j := range tc.digs[:cnt] {
				b.changed(i+int64(j), &tc.digs[j])
			}
		default:
			if tc.k == Zero {
				s.Zeros += cnt
			} else {
				s.Holes += cnt
			}
			if bk == Data {
				b.zeroRun(Extent{First: i, Count: cnt})
			}
		}
		tc.skip(cnt)
		if bc.i < bc.n {
			bc.skip(cnt)
		}
	}
	if err := tc.drain(); err != nil {
		return err
	}
	return bc.drain()
}

// zeroRun adds a run of blocks to zero, merging with the pending one.
func (b *builder) zeroRun(e Extent) {
	if b.zr.Count > 0 && b.zr.End() == e.First {
		b.zr.Count += e.Count
		return
	}
	if b.zr.Count > 0 {
		b.cs.zeros = append(b.cs.zeros, b.zr)
	}
	b.zr = e
}
