package ebsfake

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"time"
)

// Token layouts (before base64; every token ends with a 16-byte HMAC of what precedes it):
//
//	block: 'B' gen[8] index[4] expiry[8] len(id)[1] id
//	page:  'P' op[1] cursor[4] expiry[8] len(a)[1] a len(b)[1] b
//
// Expiry is Unix seconds on the Server clock.

var errBadToken = errors.New("malformed, tampered or foreign token")

func (s *Server) seal(msg []byte) string {
	return base64.StdEncoding.EncodeToString(append(msg, s.mac(msg)...))
}

func (s *Server) open(tok string, kind byte) ([]byte, error) {
	if len(tok) > 256 || !base64Re.MatchString(tok) {
		return nil, errBadToken
	}
	raw, err := base64.StdEncoding.DecodeString(tok)
	if err != nil || len(raw) < 17 || raw[0] != kind {
		return nil, errBadToken
	}
	msg, sum := raw[:len(raw)-16], raw[len(raw)-16:]
	if !hmac.Equal(sum, s.mac(msg)) {
		return nil, errBadToken
	}
	return msg, nil
}

func appendID(b []byte, id string) []byte { return append(append(b, byte(len(id))), id...) }

func readID(b []byte) (string, []byte, bool) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return "", nil, false
	}
	n := int(b[0])
	return string(b[1 : 1+n]), b[1+n:], true
}

type blockToken struct {
	snap   string
	index  int32
	gen    uint64
	expiry time.Time
}

func (s *Server) blockToken(t blockToken) string {
	b := make([]byte, 0, 64)
	b = append(b, 'B')
	b = binary.BigEndian.AppendUint64(b, t.gen)
	b = binary.BigEndian.AppendUint32(b, uint32(t.index))
	b = binary.BigEndian.AppendUint64(b, uint64(t.expiry.Unix()))
	b = appendID(b, t.snap)
	return s.seal(b)
}

func (s *Server) parseBlockToken(tok string) (blockToken, error) {
	msg, err := s.open(tok, 'B')
	if err != nil || len(msg) < 1+8+4+8+1 {
		return blockToken{}, errBadToken
	}
	t := blockToken{
		gen:    binary.BigEndian.Uint64(msg[1:9]),
		index:  int32(binary.BigEndian.Uint32(msg[9:13])),
		expiry: time.Unix(int64(binary.BigEndian.Uint64(msg[13:21])), 0),
	}
	id, rest, ok := readID(msg[21:])
	if !ok || len(rest) != 0 {
		return blockToken{}, errBadToken
	}
	t.snap = id
	return t, nil
}

type pageToken struct {
	op     byte // 'S' ListSnapshotBlocks, 'C' ListChangedBlocks
	cursor int32
	expiry time.Time
	a, b   string
}

func (s *Server) pageToken(t pageToken) string {
	b := make([]byte, 0, 80)
	b = append(b, 'P', t.op)
	b = binary.BigEndian.AppendUint32(b, uint32(t.cursor))
	b = binary.BigEndian.AppendUint64(b, uint64(t.expiry.Unix()))
	b = appendID(b, t.a)
	b = appendID(b, t.b)
	return s.seal(b)
}

func (s *Server) parsePageToken(tok string) (pageToken, error) {
	msg, err := s.open(tok, 'P')
	if err != nil || len(msg) < 2+4+8+2 {
		return pageToken{}, errBadToken
	}
	t := pageToken{
		op:     msg[1],
		cursor: int32(binary.BigEndian.Uint32(msg[2:6])),
		expiry: time.Unix(int64(binary.BigEndian.Uint64(msg[6:14])), 0),
	}
	a, rest, ok := readID(msg[14:])
	if !ok {
		return pageToken{}, errBadToken
	}
	bid, rest, ok := readID(rest)
	if !ok || len(rest) != 0 {
		return pageToken{}, errBadToken
	}
	t.a, t.b = a, bid
	return t, nil
}
