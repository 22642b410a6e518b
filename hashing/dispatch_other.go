//go:build !amd64 || purego

package hashing

// Only crypto/sha256 runs in this build: either the architecture has no
// other engine here, or the purego build tag forces the standard library.
var impls = [numEngines]*impl{Stdlib: stdlibImpl}

func choose() (single, batch Engine) { return Stdlib, Stdlib }
