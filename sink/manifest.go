package sink

import "github.com/blockferry/blockferry/blockdiff"

func writeManifest(path string, m *blockdiff.Manifest) error {
	return blockdiff.WriteManifestFile(path, m)
}
