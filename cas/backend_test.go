package cas_test

import (
	"context"
	"errors"
	"testing"

	"github.com/blockferry/blockferry/cas"
	"github.com/blockferry/blockferry/cas/castest"
)

func TestDirBackend(t *testing.T) {
	castest.TestBackend(t, func(t *testing.T) cas.Backend {
		d, err := cas.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

func TestMemoryBackend(t *testing.T) {
	castest.TestBackend(t, func(t *testing.T) cas.Backend { return cas.NewMemory() })
}

func TestFaultyBackend(t *testing.T) {
	castest.TestBackend(t, func(t *testing.T) cas.Backend { return castest.NewFaulty(cas.NewMemory()) })

	ctx := context.Background()
	f := castest.NewFaulty(cas.NewMemory())
	boom := errors.New("boom")
	f.FailNth(castest.OpPut, 2, boom)
	for i, want := range []error{nil, boom, nil} {
		err := f.Put(ctx, "k", []byte("v"))
		if !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("Put call %d: got %v, want %v", i+1, err, want)
		}
	}
	if got := f.Calls(castest.OpPut); got != 3 {
		t.Errorf("Calls(put): got %d, want 3", got)
	}
	f.CorruptGets(func(string) bool { return true })
	got, err := f.Get(ctx, "k")
	if err != nil || string(got) == "v" {
		t.Errorf("corrupt Get: got %q, %v; want altered bytes", got, err)
	}
	if _, ok := f.Unwrap().(*cas.Memory); !ok {
		t.Errorf("Unwrap: got %T, want *cas.Memory", f.Unwrap())
	}
}

func TestOpenDirMissing(t *testing.T) {
	_, err := cas.OpenDir(t.TempDir() + "/nope")
	if err == nil {
		t.Fatal("OpenDir of a missing directory: got nil error")
	}
}

func TestStoreDir(t *testing.T) {
	castest.TestStore(t, func(t *testing.T) cas.Backend {
		d, err := cas.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

func TestStoreMemory(t *testing.T) {
	castest.TestStore(t, func(t *testing.T) cas.Backend { return cas.NewMemory() })
}
