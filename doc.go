// Package blockferry is the root of an embeddable library for
// content-addressed block diffing and replication. The code lives in its
// sub-packages: blockdiff (the vocabulary), hashing, source, sink,
// replicate, cas, ebs and cmd/blockferry; see README.md.
package blockferry
