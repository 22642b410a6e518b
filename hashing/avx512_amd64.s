//go:build amd64 && !purego && !avx512model

// This file is empty on purpose: it lets avx512_amd64.go declare the
// body-less sha256X16Avx512, whose body is pulled from sha256-simd by
// go:linkname.
