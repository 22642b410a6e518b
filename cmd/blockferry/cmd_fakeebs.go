package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/blockferry/blockferry/ebs/ebsfake"
)

type fakeEBSFlags struct {
	listen  string
	region  string
	owner   string
	dataDir string
	latency time.Duration
}

func fakeEBSCommand() *command {
	return &command{
		name:    "fake-ebs",
		args:    "",
		summary: "serve a fake EBS direct API (and EC2 snapshot calls) for tests and demos",
		help: `Runs the ebsfake server, a faithful fake of the EBS direct APIs, until
interrupted. Point an AWS SDK at it with AWS_ENDPOINT_URL=http://ADDR and
any credentials. Block data stays in memory unless --data-dir is given.
Listen on loopback only unless you mean it: the fake has no auth.`,
		flags: func(fs *flag.FlagSet) any {
			f := &fakeEBSFlags{}
			fs.StringVar(&f.listen, "listen", "127.0.0.1:0", "`ADDR` to listen on (port 0: any free port)")
			fs.StringVar(&f.region, "region", "", "region the fake reports (default us-east-1)")
			fs.StringVar(&f.owner, "owner", "", "12-digit account id the fake reports (default 111122223333)")
			fs.StringVar(&f.dataDir, "data-dir", "", "keep block data in a log file in `DIR` instead of memory")
			fs.DurationVar(&f.latency, "latency", 0, "added to every request, e.g. 5ms")
			return f
		},
		run: func(ctx context.Context, e env, opts any, args []string) error {
			return runFakeEBS(ctx, e, opts.(*fakeEBSFlags), args)
		},
	}
}

func runFakeEBS(ctx context.Context, e env, f *fakeEBSFlags, args []string) (err error) {
	if err := wantArgs(args); err != nil {
		return err
	}
	srv, err := ebsfake.New(ebsfake.Options{Region: f.region, OwnerID: f.owner, DataDir: f.dataDir, Latency: f.latency})
	if err != nil {
		return err
	}
	defer closeAll(&err, srv.Close)
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.listen, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	fmt.Fprintf(e.stdout, "fake EBS listening on http://%s (interrupt to stop)\n", ln.Addr())
	fmt.Fprintf(e.stdout, "  export AWS_ENDPOINT_URL=http://%s AWS_ACCESS_KEY_ID=fake AWS_SECRET_ACCESS_KEY=fake AWS_REGION=%s\n",
		ln.Addr(), orDefault(f.region, "us-east-1"))
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
