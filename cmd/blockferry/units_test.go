package main

import (
	"flag"
	"testing"
)

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"4096", 4096, true},
		{"512KiB", 512 << 10, true},
		{"64MiB", 64 << 20, true},
		{"100M", 100 << 20, true},
		{"1GB", 1e9, true},
		{"1.5KiB", 1536, true},
		{"10mb", 10e6, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"12XB", 0, false},
		{"1.3", 0, false},
		{"-5", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseBytes(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseBytes(%q): got %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"10MB/s", 10e6, true},
		{"100MiB/s", 100 << 20, true},
		{"100M", 100 << 20, true},
		{"1Gbps", 0, false},
		{"fast", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseRate(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("parseRate(%q): got %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1 KiB"}, {512 << 10, "512 KiB"}, {1536 << 20, "1.5 GiB"},
	}
	for _, tt := range tests {
		if got := humanBytes(tt.in); got != tt.want {
			t.Errorf("humanBytes(%d): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestBlockSizeFlag(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"4KiB", 4 << 10, true},
		{"512KiB", 512 << 10, true},
		{"16MiB", 16 << 20, true},
		{"65536", 65536, true},
		{"3000", 0, false},
		{"2KiB", 0, false},
		{"32MiB", 0, false},
		{"96KiB", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var b blockSizeFlag
			err := b.Set(tt.in)
			if (err == nil) != tt.ok || int(b) != tt.want {
				t.Errorf("Set(%q): got %d, %v; want %d, ok=%v", tt.in, int(b), err, tt.want, tt.ok)
			}
		})
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		name string
		args []string
		pos  []string
		o    string
		j    bool
	}{
		{"flags first", []string{"-o", "x", "--json", "a", "b"}, []string{"a", "b"}, "x", true},
		{"flags last", []string{"a", "b", "-o", "x", "--json"}, []string{"a", "b"}, "x", true},
		{"mixed", []string{"a", "--json", "b", "-o=x"}, []string{"a", "b"}, "x", true},
		{"after --", []string{"a", "--", "-o", "x"}, []string{"a", "-o", "x"}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			o := fs.String("o", "", "")
			j := fs.Bool("json", false, "")
			pos, err := parseInterspersed(fs, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if len(pos) != len(tt.pos) {
				t.Fatalf("positional: got %q, want %q", pos, tt.pos)
			}
			for i := range pos {
				if pos[i] != tt.pos[i] {
					t.Fatalf("positional: got %q, want %q", pos, tt.pos)
				}
			}
			if *o != tt.o || *j != tt.j {
				t.Errorf("flags: got -o %q --json %v, want %q %v", *o, *j, tt.o, tt.j)
			}
		})
	}
}

func TestParseLocation(t *testing.T) {
	tests := []struct {
		in, scheme, path, snap string
		ok                     bool
	}{
		{"disk.img", "file", "disk.img", "", true},
		{"/tmp/x:y", "file", "/tmp/x:y", "", true},
		{"file:/tmp/a", "file", "/tmp/a", "", true},
		{"dev:/dev/sdb", "block device", "/dev/sdb", "", true},
		{"cas:/srv/store#monday", "store", "/srv/store", "monday", true},
		{"cas:/srv/store", "store", "/srv/store", "", true},
		{"s3://bucket/prefix#snap1", "S3 store", "bucket/prefix", "snap1", true},
		{"ebs:snap-0123456789abcdef0", "EBS snapshot", "snap-0123456789abcdef0", "", true},
		{"ebs:new", "EBS snapshot", "new", "", true},
		{"file:", "", "", "", false},
		{"gcs:bucket", "", "", "", false},
		{"", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			l, err := parseLocation(tt.in)
			if !tt.ok {
				if err == nil {
					t.Fatalf("parseLocation(%q): got %+v, want an error", tt.in, l)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseLocation(%q): %v", tt.in, err)
			}
			if l.scheme.name != tt.scheme || l.path != tt.path || l.snapshot != tt.snap {
				t.Errorf("parseLocation(%q): got scheme %q path %q snapshot %q, want %q %q %q",
					tt.in, l.scheme.name, l.path, l.snapshot, tt.scheme, tt.path, tt.snap)
			}
		})
	}
}
