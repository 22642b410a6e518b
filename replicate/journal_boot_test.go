package replicate

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/blockferry/blockferry/blockdiff"
	"github.com/blockferry/blockferry/sink"
)

// TestJournalBoot: with a syncing sink, records the sink's syncs covered
// are always applied; records written after the last sync (a killed run)
// are applied in the same boot and dropped after a reboot, when a power
// loss may have undone their data. A journal written without a syncing
// sink is applied whole.
func TestJournalBoot(t *testing.T) {
	bootA, bootB := sum256([]byte("boot A")), sum256([]byte("boot B"))
	id := planIdentity{Format: journalFormat, Plan: PlanFull, Source: "mem:src", Target: "mem:dst"}
	const blocks = 100
	g := blockdiff.Geometry{Size: blocks * testBS, BlockSize: testBS}
	syncing := func(t *testing.T) blockdiff.Sink {
		m, err := sink.NewMemory(g)
		if err != nil {
			t.Fatal(err)
		}
		return &syncSink{Memory: m}
	}
	plain := func(t *testing.T) blockdiff.Sink {
		m, err := sink.NewMemory(g)
		if err != nil {
			t.Fatal(err)
		}
		return writeOnly{m}
	}
	// write journals synced records, then unsynced ones, then "dies"
	// (closes the file without a sync).
	write := func(t *testing.T, path string, dst blockdiff.Sink, boot blockdiff.Digest, first, synced, unsynced int64) {
		j, err := openJournalBoot(path, id, blocks, dst, boot, func(journalRecord) {})
		if err != nil {
			t.Fatal(err)
		}
		for i := first; i < first+synced+unsynced; i++ {
			if i == first+synced {
				if err := j.sync(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			r := result{index: i, count: 1, kind: blockdiff.Data, act: actWritten, digest: sum256([]byte{byte(i)})}
			if err := j.write(&r); err != nil {
				t.Fatal(err)
			}
			j.pending++
		}
		if synced > 0 && unsynced == 0 {
			if err := j.sync(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		j.f.Close() // killed: no final sync
	}
	load := func(t *testing.T, path string, dst blockdiff.Sink, boot blockdiff.Digest) (n int64) {
		j, err := openJournalBoot(path, id, blocks, dst, boot, func(r journalRecord) { n += r.count })
		if err != nil {
			t.Fatal(err)
		}
		j.f.Close()
		return n
	}
	for _, tc := range []struct {
		name string
		runs func(t *testing.T, path string)
		now  blockdiff.Digest
		sink func(*testing.T) blockdiff.Sink
		want int64
	}{
		{"killed, same boot", func(t *testing.T, p string) { write(t, p, syncing(t), bootA, 0, 10, 5) }, bootA, syncing, 15},
		{"killed, rebooted", func(t *testing.T, p string) { write(t, p, syncing(t), bootA, 0, 10, 5) }, bootB, syncing, 10},
		{"nothing synced, rebooted", func(t *testing.T, p string) { write(t, p, syncing(t), bootA, 0, 0, 5) }, bootB, syncing, 0},
		{"all synced, rebooted", func(t *testing.T, p string) { write(t, p, syncing(t), bootA, 0, 10, 0) }, bootB, syncing, 10},
		{"unknown boot", func(t *testing.T, p string) { write(t, p, syncing(t), blockdiff.Digest{}, 0, 10, 5) }, blockdiff.Digest{}, syncing, 10},
		{"two runs, second rebooted", func(t *testing.T, p string) {
			write(t, p, syncing(t), bootA, 0, 10, 5)
			write(t, p, syncing(t), bootB, 20, 4, 3)
		}, bootB, syncing, 10 + 4 + 3},
		{"without a syncing sink", func(t *testing.T, p string) { write(t, p, plain(t), bootA, 0, 10, 5) }, bootB, plain, 15},
		{"plain journal resumed with a syncing sink", func(t *testing.T, p string) { write(t, p, plain(t), bootA, 0, 10, 5) }, bootB, syncing, 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "j")
			tc.runs(t, p)
			if got := load(t, p, tc.sink(t), tc.now); got != tc.want {
				t.Errorf("blocks applied: got %d, want %d", got, tc.want)
			}
		})
	}
}
