package cas

import (
	"fmt"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/hashing"
	"github.com/klauspost/compress/zstd"
)

// Chunk encodings: the first byte of every stored chunk.
const (
	chunkRaw  byte = 0 // the block's bytes follow as they are
	chunkZstd byte = 1 // one zstd frame follows
)

// chunkKey returns the key of the chunk holding content d:
// "chunks/ab/cd/abcd…" (two levels of fan-out by the first two bytes).
func chunkKey(d blockdiff.Digest) string {
	h := d.String()
	return "chunks/" + h[0:2] + "/" + h[2:4] + "/" + h
}

// parseChunkKey returns the digest named by a chunk key.
func parseChunkKey(key string) (blockdiff.Digest, bool) {
	const n = len("chunks/ab/cd/")
	if len(key) != n+2*blockdiff.DigestSize {
		return blockdiff.Digest{}, false
	}
	d, err := blockdiff.ParseDigest(key[n:])
	if err != nil || chunkKey(d) != key {
		return blockdiff.Digest{}, false
	}
	return d, true
}

// codec encodes and decodes chunks. Its encoder and decoder are safe for
// concurrent EncodeAll/DecodeAll.
type codec struct {
	enc *zstd.Encoder // nil: store raw
	dec *zstd.Decoder
}

func newCodec(level int) (*codec, error) {
	c := &codec{}
	var err error
	if level >= 0 {
		if level == 0 {
			level = 3
		}
		c.enc, err = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderCRC(false), // the digest checks every chunk
			zstd.WithZeroFrames(true))
		if err != nil {
			return nil, fmt.Errorf("cas: zstd encoder level %d: %w", level, err)
		}
	}
	c.dec, err = zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(blockdiff.MaxBlockSize))
	if err != nil {
		return nil, fmt.Errorf("cas: zstd decoder: %w", err)
	}
	return c, nil
}

func (c *codec) close() {
	if c.enc != nil {
		c.enc.Close()
	}
	c.dec.Close()
}

// encode appends the stored form of block to dst[:0]: zstd when that is
// smaller, raw otherwise.
func (c *codec) encode(dst, block []byte) []byte {
	dst = dst[:0]
	if c.enc != nil {
		dst = append(dst, chunkZstd)
		dst = c.enc.EncodeAll(block, dst)
		if len(dst) < 1+len(block) {
			return dst
		}
		dst = dst[:0]
	}
	dst = append(dst, chunkRaw)
	return append(dst, block...)
}

// decode decodes stored chunk b, named d, into buf and checks its SHA-256
// against d. It returns the block (buf[:n] when it fits, else a new slice).
// Any failure wraps [blockdiff.ErrChecksum] and names d.
func (c *codec) decode(d blockdiff.Digest, b, buf []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("cas: chunk %s: empty object: %w", d, blockdiff.ErrChecksum)
	}
	var out []byte
	switch b[0] {
	case chunkRaw:
		if len(b)-1 > blockdiff.MaxBlockSize {
			return nil, fmt.Errorf("cas: chunk %s: %d bytes exceeds the largest block: %w", d, len(b)-1, blockdiff.ErrChecksum)
		}
		out = append(buf[:0], b[1:]...)
	case chunkZstd:
		var err error
		out, err = c.dec.DecodeAll(b[1:], buf[:0])
		if err != nil {
			return nil, fmt.Errorf("cas: chunk %s: decompress: %w: %w", d, blockdiff.ErrChecksum, err)
		}
	default:
		return nil, fmt.Errorf("cas: chunk %s: unknown encoding byte %#x: %w", d, b[0], blockdiff.ErrChecksum)
	}
	if got := blockdiff.Digest(hashing.Sum256(out)); got != d {
		return nil, fmt.Errorf("cas: chunk %s: content hashes to %s: %w (the stored object is corrupt; run verify and back the volume up again)", d, got, blockdiff.ErrChecksum)
	}
	return out, nil
}
