package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// version is the CLI's version; release builds set it with
// -ldflags "-X main.version=v1.2.3". Otherwise the module version from the
// build info is shown.
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err as one line on stderr and returns the process exit
// status: 0 for success, 2 for a usage error, 1 for anything else.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "blockferry: %s\n", oneLine(err.Error()))
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// oneLine folds a multi-line message onto one line, so every failure is one
// line on stderr that a log collector keeps whole.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// usageError is a mistake on the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// env is what a command may touch of the process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// command is one subcommand of the CLI.
type command struct {
	name    string
	args    string // positional arguments, for the usage line
	summary string // one line for the command list
	help    string // paragraphs shown by "blockferry NAME -h"
	flags   func(fs *flag.FlagSet) any
	run     func(ctx context.Context, e env, opts any, args []string) error
}

// commands is the literal table of subcommands, in the order "help" lists
// them.
func commands() []*command {
	return []*command{
		hashCommand(),
		diffCommand(),
		inspectCommand(),
		copyCommand(),
		verifyCommand(),
		demoCommand(),
		storeCommand(),
		snapshotCommand(),
		fakeEBSCommand(),
	}
}

const topUsage = `blockferry moves block volumes by content: it hashes every block with
SHA-256, finds what changed, and copies only that.

Usage:
  blockferry COMMAND [ARGS] [FLAGS]

Commands:
%s
Locations (SRC, DST, A, B):
  PATH, file:PATH     a regular file (disk image); sparse-aware
  dev:PATH            a block device
  cas:DIR[#SNAPSHOT]  a snapshot in a local content-addressed store
  s3://BUCKET/PREFIX[#SNAPSHOT]
                      a snapshot in a content-addressed store on S3
  ebs:snap-ID, ebs:new
                      an EBS snapshot (source) / a new one (target)
  A manifest file (.bfm, written by "hash" or "copy") may stand for a
  volume wherever only digests are needed (diff A B, verify, --base).

Run "blockferry COMMAND -h" for a command's flags. Try "blockferry demo".
`

// run is the whole CLI: it parses args (without the program name), runs one
// command and returns its error. Tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := env{stdin: stdin, stdout: stdout, stderr: stderr}
	cmds := commands()
	if len(args) == 0 {
		printTopUsage(stderr, cmds)
		return usagef("no command given (try \"blockferry demo\" or \"blockferry help\")")
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(rest) > 0 {
			for _, c := range cmds {
				if c.name == rest[0] {
					printCommandUsage(stdout, c, nil)
					return nil
				}
			}
		}
		printTopUsage(stdout, cmds)
		return nil
	case "-version", "--version", "version":
		fmt.Fprintf(stdout, "blockferry %s\n", versionString())
		return nil
	}
	for _, c := range cmds {
		if c.name == name {
			return runCommand(ctx, e, c, rest)
		}
	}
	return usagef("unknown command %q (run \"blockferry help\" for the list)", name)
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func printTopUsage(w io.Writer, cmds []*command) {
	var b strings.Builder
	for _, c := range cmds {
		fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, topUsage, b.String())
}

func printCommandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	if fs == nil {
		fs = flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.flags(fs)
	}
	fmt.Fprintf(w, "Usage: blockferry %s %s [FLAGS]\n\n%s\n", c.name, c.args, strings.TrimSpace(c.help))
	var n int
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintf(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// runCommand parses c's flags, which may come before, between or after the
// positional arguments, and runs it. Errors are prefixed with the command
// name.
func runCommand(ctx context.Context, e env, c *command, args []string) error {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	opts := c.flags(fs)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printCommandUsage(e.stdout, c, fs)
		return nil
	}
	if err != nil {
		return usagef("%s: %v (run \"blockferry %s -h\" for usage)", c.name, err, c.name)
	}
	if err := c.run(ctx, e, opts, pos); err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			return usagef("%s: %s (run \"blockferry %s -h\" for usage)", c.name, ue.msg, c.name)
		}
		return fmt.Errorf("%s: %w", c.name, err)
	}
	return nil
}

// parseInterspersed parses flags anywhere among args and returns the
// positional arguments in order. Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// wantArgs returns a usage error unless exactly n positional arguments,
// named by names, were given.
func wantArgs(args []string, names ...string) error {
	if len(args) == len(names) {
		return nil
	}
	if len(args) < len(names) {
		return usagef("missing %s", strings.Join(names[len(args):], " and "))
	}
	return usagef("too many arguments: %q (want %s)", args[len(names):], strings.Join(names, " "))
}
