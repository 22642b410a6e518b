package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/blockferry/blockferry/ebs/ebsfake"
)

// demoRegion is an ebsfake server serving one fake region on 127.0.0.1.
type demoRegion struct {
	name string
	srv  *ebsfake.Server
	hs   *http.Server
	url  string
	done chan error
}

func startDemoRegion(name string) (*demoRegion, error) {
	srv, err := ebsfake.New(ebsfake.Options{Region: name})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, errors.Join(fmt.Errorf("demo: listen for the fake %s: %w", name, err), srv.Close())
	}
	r := &demoRegion{name: name, srv: srv, url: "http://" + ln.Addr().String(), done: make(chan error, 1),
		hs: &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}}
	go func() { r.done <- r.hs.Serve(ln) }()
	return r, nil
}

// stop closes the server and its connections at once: the demo's commands
// are done, and the SDK keeps idle connections a graceful shutdown would
// wait for.
func (r *demoRegion) stop() error {
	err := r.hs.Close()
	if serr := <-r.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return errors.Join(err, r.srv.Close())
}

func (r *demoRegion) count(op ebsfake.Op) int { return r.srv.Stats().Requests[op] }

// withDemoCredentials sets static fake AWS credentials (the fakes ignore
// signatures) and keeps the SDK off the instance metadata service and the
// user's profile while fn runs, restoring the environment afterwards.
func withDemoCredentials(fn func() error) error {
	set := map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDBLOCKFERRYDEMO", "AWS_SECRET_ACCESS_KEY": "demo", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true",
	}
	old := map[string]*string{}
	for k, v := range set {
		if o, ok := os.LookupEnv(k); ok {
			old[k] = &o
		} else {
			old[k] = nil
		}
		if v == "" {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, v)
		}
	}
	defer func() {
		for k, v := range old {
			if v == nil {
				os.Unsetenv(k)
			} else {
				os.Setenv(k, *v)
			}
		}
	}()
	return fn()
}

// ebsDemo runs the EBS part of the demo: two fake regions, a file into
// snapshots in A (full, then incremental), both copied to B (the second by
// change list), and B's v2 back into a file.
func (d *demo) ebsDemo(step int, size int64) (err error) {
	a, err := startDemoRegion("us-east-1")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, a.stop()) }()
	b, err := startDemoRegion("us-west-2")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.stop()) }()
	d.subst = map[string]string{"$A": a.url, "$B": b.url}
	say := d.say
	blocks := size / (512 << 10)

	say("%d. EBS snapshots, region to region. Two fake EBS services (ebsfake, the same HTTP API as", step)
	say("   AWS, with EC2 DescribeSnapshots for the completion wait) run in this process:")
	say("   $A = %s (us-east-1) and $B = %s (us-west-2), with fake credentials.", a.url, b.url)
	say("   EBS volumes are whole GiB: the %s file becomes a 1 GiB snapshot whose other", humanBytes(size))
	say("   %s are never written (they read as zeros and are not even listed). The", humanBytes(1<<30-size))
	say("   file's real size is kept with the snapshot's manifest in --state-dir, so reading the")
	say("   snapshot back gives a %s file again (--size says it when the manifest is not at hand).", humanBytes(size))
	say("")
	say("%d.1 v1.img -> a new snapshot in A. A first snapshot starts empty, so zero blocks and holes", step)
	say("    are not sent.")
	a1, err := d.snapCmd("copy", "v1.img", "ebs:new", "--dest-region", "us-east-1", "--dest-ebs-endpoint", "$A", "--dest-ec2-endpoint", "$A", "--state-dir", "ebs-state")
	if err != nil {
		return err
	}
	say("%d.2 v2.img -> an incremental snapshot on it (--parent). It starts as v1, and v1's saved", step)
	say("    manifest is the base: v2 is hashed, and only its changed blocks are put (zeroed ones as")
	say("    written zeros, since the parent has data there).")
	a2, err := d.snapCmd("copy", "v2.img", "ebs:new", "--parent", a1, "--dest-region", "us-east-1", "--dest-ebs-endpoint", "$A", "--dest-ec2-endpoint", "$A", "--state-dir", "ebs-state")
	if err != nil {
		return err
	}
	say("%d.3 Copy A's v1 snapshot to region B (a full copy: listed blocks only).", step)
	b1, err := d.snapCmd("copy", "ebs:"+a1, "ebs:new", "--region", "us-east-1", "--ebs-endpoint", "$A",
		"--dest-region", "us-west-2", "--dest-ebs-endpoint", "$B", "--dest-ec2-endpoint", "$B", "--state-dir", "ebs-state")
	if err != nil {
		return err
	}
	getsA, putsB := a.count(ebsfake.OpGetSnapshotBlock), b.count(ebsfake.OpPutSnapshotBlock)
	listA := a.count(ebsfake.OpListChangedBlocks)
	say("%d.4 Copy A's v2 snapshot to B, on B's copy of v1 (--parent). The base is that copy's saved", step)
	say("    manifest, whose origin is A's v1 snapshot, so A lists the changes v1 -> v2 itself")
	say("    (ListChangedBlocks) and only those blocks are fetched from A and put to B: plan change-list.")
	b2, err := d.snapCmd("copy", "ebs:"+a2, "ebs:new", "--parent", b1, "--region", "us-east-1", "--ebs-endpoint", "$A",
		"--dest-region", "us-west-2", "--dest-ebs-endpoint", "$B", "--dest-ec2-endpoint", "$B", "--state-dir", "ebs-state")
	if err != nil {
		return err
	}
	gets, puts := a.count(ebsfake.OpGetSnapshotBlock)-getsA, b.count(ebsfake.OpPutSnapshotBlock)-putsB
	say("    Counted by the fakes: %d ListChangedBlocks call(s) and %d GetSnapshotBlock in A, %d",
		a.count(ebsfake.OpListChangedBlocks)-listA, gets, puts)
	say("    PutSnapshotBlock in B, for a volume of %d blocks.", blocks)
	say("")
	say("%d.5 Read B's v2 snapshot back into a file and compare it with v2.img.", step)
	if err := d.cmd("copy", "ebs:"+b2, "ebs-v2.img", "--region", "us-west-2", "--ebs-endpoint", "$B", "--state-dir", "ebs-state"); err != nil {
		return err
	}
	same, err := sameContent(filepath.Join(d.dir, "v2.img"), filepath.Join(d.dir, "ebs-v2.img"))
	if err != nil {
		return err
	}
	if !same {
		return fmt.Errorf("demo: ebs-v2.img (from region B) differs from v2.img: this is a bug, please report it")
	}
	say("    Byte-for-byte check: ebs-v2.img, read from region B, is identical to v2.img.")
	say("")
	return nil
}

// snapCmd runs a copy to ebs:new and returns the new snapshot's id from
// its summary.
func (d *demo) snapCmd(args ...string) (string, error) {
	out, err := d.cmdOut(args...)
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(out, "\n") {
		if id, ok := strings.CutPrefix(strings.TrimSpace(l), "snapshot "); ok {
			return strings.TrimSpace(id), nil
		}
	}
	return "", fmt.Errorf("demo: copy printed no snapshot id:\n%s", out)
}
