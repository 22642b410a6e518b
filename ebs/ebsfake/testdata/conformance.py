#!/usr/bin/env python3
"""Runs the EBS direct API conformance checks (docs/ebs-direct-api.md §9) with boto3.

Usage: conformance.py URL

URL is an ebsfake endpoint (or anything that claims to be the EBS direct APIs). Prints one
line per check ("ok check-N-name" or "FAIL check-N-name: why") and exits 1 if any check
failed. Credentials come from the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).

Check 34 needs the server to fail the first PutSnapshotBlock of snapshots whose
Description is "ebsfake:fail-first-put" with 500 InternalServerException; the Go test
that runs this script configures the fake that way.

Checks that need the fake's clock or its options (18, 30/24 expiry, 33) are Go-only; check
27 uses 201 blocks instead of 1000 to keep the run short.
"""

import base64
import hashlib
import json
import re
import sys
import traceback
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

BLOCK = 524288
RESULTS = []


def fill(b):
    return bytes([b]) * BLOCK


def numbered(n):
    return (n + 1).to_bytes(8, "big") + bytes(BLOCK - 8)


def b64sha(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def linear(blocks):
    h = hashlib.sha256()
    for i in sorted(blocks):
        h.update(hashlib.sha256(blocks[i]).digest())
    return base64.b64encode(h.digest()).decode()


class CheckFailed(Exception):
    pass


def want(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def check(name):
    def deco(fn):
        RESULTS.append((name, fn))
        return fn
    return deco


def expect_error(fn, code, reason=None, status=None):
    try:
        fn()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        want(got == code, "got error %s, want %s (%s)" % (got, code, e))
        if reason is not None:
            want(e.response.get("Reason") == reason,
                 "Reason: got %r, want %r" % (e.response.get("Reason"), reason))
        if status is not None:
            got_status = e.response["ResponseMetadata"]["HTTPStatusCode"]
            want(got_status == status, "status: got %d, want %d" % (got_status, status))
        return e
    raise CheckFailed("got no error, want %s" % code)


class Env:
    def __init__(self, url):
        self.url = url.rstrip("/")
        self.ebs = boto3.client(
            "ebs", endpoint_url=self.url, region_name="us-east-1",
            config=Config(retries={"mode": "standard", "max_attempts": 3}))

    def start(self, **kw):
        kw.setdefault("VolumeSize", 1)
        return self.ebs.start_snapshot(**kw)["SnapshotId"]

    def put(self, sid, idx, data, checksum=None, length=None):
        return self.ebs.put_snapshot_block(
            SnapshotId=sid, BlockIndex=idx, BlockData=data,
            DataLength=len(data) if length is None else length,
            Checksum=checksum or b64sha(data), ChecksumAlgorithm="SHA256")

    def complete(self, sid, blocks, count=None, checksum=None):
        return self.ebs.complete_snapshot(
            SnapshotId=sid, ChangedBlocksCount=len(blocks) if count is None else count,
            Checksum=checksum or linear(blocks), ChecksumAlgorithm="SHA256",
            ChecksumAggregationMethod="LINEAR")

    def snapshot(self, blocks, parent=None):
        kw = {"ParentSnapshotId": parent} if parent else {}
        sid = self.start(**kw)
        for i, d in blocks.items():
            self.put(sid, i, d)
        self.complete(sid, blocks)
        return sid

    def list_all(self, sid, **kw):
        out, tok = [], None
        while True:
            args = dict(kw, SnapshotId=sid)
            if tok:
                args["NextToken"] = tok
            page = self.ebs.list_snapshot_blocks(**args)
            out += page["Blocks"]
            tok = page.get("NextToken")
            if not tok:
                return out

    def readable(self, sid):
        """Reports whether sid is completed: only completed snapshots can be listed."""
        try:
            self.ebs.list_snapshot_blocks(SnapshotId=sid)
            return True
        except ClientError as e:
            want(e.response["Error"]["Code"] == "ValidationException", "unexpected %s" % e)
            return False

    def get(self, sid, idx, tok):
        r = self.ebs.get_snapshot_block(SnapshotId=sid, BlockIndex=idx, BlockToken=tok)
        return r["BlockData"].read(), r

    def raw(self, method, path, body=None, headers=None):
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def token_for(blocks, idx):
    return next(b["BlockToken"] for b in blocks if b["BlockIndex"] == idx)


@check("check-01-start-snapshot-wire")
def c01(env):
    st, hdr, body = env.raw("POST", "/snapshots", b'{"VolumeSize":1}', {"Content-Type": "application/json"})
    want(st == 201, "status %d, want 201" % st)
    m = json.loads(body)
    want(re.fullmatch(r"snap-[0-9a-f]{17}", m["SnapshotId"]), "SnapshotId %r" % m["SnapshotId"])
    want(m["Status"] == "pending" and m["BlockSize"] == 524288 and m["VolumeSize"] == 1, "got %r" % m)
    want(re.fullmatch(r"\d{12}", m["OwnerId"]), "OwnerId %r" % m["OwnerId"])
    want(isinstance(m["StartTime"], (int, float)), "StartTime %r is not a JSON number" % m["StartTime"])
    r = env.ebs.start_snapshot(VolumeSize=1)
    want(r["Status"] == "pending" and r["BlockSize"] == 524288 and r["StartTime"].year >= 2000, "boto3 got %r" % r)


@check("check-02-start-echoes-fields")
def c02(env):
    tags = [{"Key": "team", "Value": "dr"}, {"Key": "empty", "Value": ""}]
    r = env.ebs.start_snapshot(VolumeSize=1, Description="nightly", Tags=tags)
    want(r["Description"] == "nightly" and r["Tags"] == tags, "got %r" % r)
    p = env.snapshot({})
    r = env.ebs.start_snapshot(VolumeSize=1, ParentSnapshotId=p)
    want(r["ParentSnapshotId"] == p, "ParentSnapshotId %r" % r.get("ParentSnapshotId"))
    arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    r = env.ebs.start_snapshot(VolumeSize=1, Encrypted=True, KmsKeyArn=arn)
    want(r["KmsKeyArn"] == arn, "KmsKeyArn %r" % r.get("KmsKeyArn"))


@check("check-03-client-token-replay")
def c03(env):
    a = env.start(VolumeSize=2, Description="d", ClientToken="py-token-1")
    b = env.start(VolumeSize=2, Description="d", ClientToken="py-token-1")
    want(a == b, "replay gave %s then %s" % (a, b))


@check("check-04-client-token-conflict")
def c04(env):
    env.start(VolumeSize=2, ClientToken="py-token-2")
    e = expect_error(lambda: env.start(VolumeSize=3, ClientToken="py-token-2"), "ConflictException", status=409)
    want("Reason" not in e.response, "Reason present: %r" % e.response.get("Reason"))


@check("check-05-encrypted-with-parent")
def c05(env):
    p = env.snapshot({})
    expect_error(lambda: env.start(ParentSnapshotId=p, Encrypted=True), "ValidationException", status=400)


@check("check-06-start-bounds")
def c06(env):
    # boto3 refuses Timeout 5 and VolumeSize 0 itself (min bounds); the server must refuse the rest.
    for kw in ({"Timeout": 5000}, {"VolumeSize": 65537}, {"Description": "d" * 256}):
        expect_error(lambda: env.start(**kw), "ValidationException", status=400)
    for body in (b'{"VolumeSize":1,"Timeout":5}', b'{"VolumeSize":0}'):
        st, hdr, _ = env.raw("POST", "/snapshots", body)
        want(st == 400 and hdr.get("x-amzn-errortype") == "ValidationException", "raw %s: %d %r" % (body, st, hdr))


@check("check-07-unknown-parent")
def c07(env):
    expect_error(lambda: env.start(ParentSnapshotId="snap-0123456789abcdef0"),
                 "ResourceNotFoundException", "SNAPSHOT_NOT_FOUND", 404)


@check("check-08-put-block")
def c08(env):
    sid = env.start()
    r = env.put(sid, 0, fill(0xAB))  # boto3 sends no Content-Type
    want(r["ResponseMetadata"]["HTTPStatusCode"] == 201, "status %r" % r["ResponseMetadata"]["HTTPStatusCode"])
    want(r["Checksum"] == "uthdne/3a6/hwzUxh+9U2QG/D++8j9dxB3n4SJrMpLw=", "Checksum %r" % r["Checksum"])
    want(r["ChecksumAlgorithm"] == "SHA256", "ChecksumAlgorithm %r" % r["ChecksumAlgorithm"])


@check("check-09-put-bad-checksum")
def c09(env):
    sid = env.start()
    expect_error(lambda: env.put(sid, 3, fill(1), checksum=b64sha(fill(2))), "ValidationException", status=400)
    env.complete(sid, {})
    want(env.list_all(sid) == [], "refused block is listed")


@check("check-10-put-data-length")
def c10(env):
    sid = env.start()
    expect_error(lambda: env.put(sid, 0, bytes(1024)), "ValidationException", "INVALID_PARAMETER_VALUE", 400)
    expect_error(lambda: env.put(sid, 0, bytes(1024), length=BLOCK), "ValidationException", "INVALID_PARAMETER_VALUE", 400)


@check("check-11-put-index-out-of-range")
def c11(env):
    sid = env.start()
    expect_error(lambda: env.put(sid, 2048, fill(1)), "ValidationException", "INVALID_BLOCK", 400)


@check("check-12-put-unknown-snapshot")
def c12(env):
    expect_error(lambda: env.put("snap-0123456789abcdef0", 0, fill(1)), "ResourceNotFoundException", "SNAPSHOT_NOT_FOUND", 404)


@check("check-13-overwrite")
def c13(env):
    sid = env.start()
    env.put(sid, 3, fill(1))
    env.put(sid, 3, fill(2))
    env.complete(sid, {3: fill(2)})
    bl = env.list_all(sid)
    want([b["BlockIndex"] for b in bl] == [3], "list %r" % bl)
    data, _ = env.get(sid, 3, bl[0]["BlockToken"])
    want(data == fill(2), "read the first data")


@check("check-14-complete")
def c14(env):
    sid = env.start()
    blocks = {0: fill(1), 9: fill(9)}
    for i, d in blocks.items():
        env.put(sid, i, d)
    r = env.complete(sid, blocks)
    want(r["ResponseMetadata"]["HTTPStatusCode"] == 202 and r["Status"] == "pending", "got %r" % r)
    want(env.readable(sid), "snapshot did not reach completed")


@check("check-15-linear-worked-example")
def c15(env):
    blocks = {5: fill(2), 0: fill(1), 2: fill(0xAB)}
    want(linear(blocks) == "dfLpjmBUZILxfeU0PkND6gEpxf8JXx7ByuRLKFsjSMQ=", "script linear is wrong")
    for checksum, ok in (("dfLpjmBUZILxfeU0PkND6gEpxf8JXx7ByuRLKFsjSMQ=", True),
                         ("qgS6YeYDmOaWPwMv0etJfOtjJt+T6BYqXBVCpOHi6Ho=", False)):
        sid = env.start()
        for i in (5, 0, 2):
            env.put(sid, i, blocks[i])
        env.complete(sid, blocks, count=3, checksum=checksum)
        want(env.readable(sid) == ok, "checksum %s: completed=%s, want %s" % (checksum, not ok, ok))


@check("check-16-complete-mismatch")
def c16(env):
    blocks = {1: fill(1), 2: fill(2)}
    for count, checksum in ((3, linear(blocks)), (2, linear({1: fill(1), 2: fill(3)}))):
        sid = env.start()
        for i, d in blocks.items():
            env.put(sid, i, d)
        env.complete(sid, blocks, count=count, checksum=checksum)
        want(not env.readable(sid), "mismatched complete reached completed")


@check("check-17-put-after-complete")
def c17(env):
    sid = env.snapshot({0: fill(1)})
    expect_error(lambda: env.put(sid, 0, fill(2)), "ValidationException", status=400)
    data, _ = env.get(sid, 0, token_for(env.list_all(sid), 0))
    want(data == fill(1), "data changed")


@check("check-19-read-pending")
def c19(env):
    done = env.snapshot({0: fill(1)})
    tok = token_for(env.list_all(done), 0)
    sid = env.start(ParentSnapshotId=done)
    for fn in (lambda: env.ebs.list_snapshot_blocks(SnapshotId=sid),
               lambda: env.ebs.list_changed_blocks(FirstSnapshotId=done, SecondSnapshotId=sid),
               lambda: env.get(sid, 0, tok)):
        try:
            fn()
            raise CheckFailed("read of a pending snapshot succeeded")
        except ClientError as e:
            st = e.response["ResponseMetadata"]["HTTPStatusCode"]
            want(400 <= st < 500, "status %d, want 4xx" % st)


@check("check-20-list-snapshot-blocks")
def c20(env):
    import datetime
    sid = env.snapshot({9: fill(9), 1: fill(1), 5: fill(5), 0: fill(0)})
    r = env.ebs.list_snapshot_blocks(SnapshotId=sid)
    want([b["BlockIndex"] for b in r["Blocks"]] == [0, 1, 5, 9], "indexes %r" % r["Blocks"])
    for b in r["Blocks"]:
        want(re.fullmatch(r"[A-Za-z0-9+/=]{1,256}", b["BlockToken"]), "token %r" % b["BlockToken"])
    want(r["BlockSize"] == 524288 and r["VolumeSize"] == 1 and "NextToken" not in r, "got %r" % r)
    now = datetime.datetime.now(datetime.timezone.utc)
    days = (r["ExpiryTime"] - now).total_seconds() / 86400
    want(6.9 < days < 7.1, "ExpiryTime %s is %.2f days ahead, want 7" % (r["ExpiryTime"], days))


BIG = {}


def big(env):
    if "id" not in BIG:
        blocks = {i: numbered(i) for i in range(250)}
        BIG["id"] = env.snapshot(blocks)
    return BIG["id"]


@check("check-21-paging")
def c21(env):
    sid = big(env)
    sizes, allidx, tok = [], [], None
    while True:
        kw = {"SnapshotId": sid, "MaxResults": 100}
        if tok:
            kw["NextToken"] = tok
        page = env.ebs.list_snapshot_blocks(**kw)
        sizes.append(len(page["Blocks"]))
        allidx += [b["BlockIndex"] for b in page["Blocks"]]
        if "NextToken" not in page:
            break
        tok = page["NextToken"]
    want(sizes == [100, 100, 50], "page sizes %r" % sizes)
    want(allidx == list(range(250)), "concatenated pages differ")


@check("check-22-starting-block-index")
def c22(env):
    sid = big(env)
    r = env.ebs.list_snapshot_blocks(SnapshotId=sid, StartingBlockIndex=200)
    want([b["BlockIndex"] for b in r["Blocks"]] == list(range(200, 250)), "startingBlockIndex=200")
    p1 = env.ebs.list_snapshot_blocks(SnapshotId=sid, MaxResults=100)
    p2 = env.ebs.list_snapshot_blocks(SnapshotId=sid, MaxResults=100, NextToken=p1["NextToken"], StartingBlockIndex=200)
    want(p2["Blocks"][0]["BlockIndex"] == 100, "pageToken did not override startingBlockIndex")


@check("check-23-max-results-bounds")
def c23(env):
    sid = big(env)
    expect_error(lambda: env.ebs.list_snapshot_blocks(SnapshotId=sid, MaxResults=20000), "ValidationException", "INVALID_PARAMETER_VALUE", 400)
    st, _, body = env.raw("GET", "/snapshots/%s/blocks?maxResults=50" % sid)
    want(st == 200 and len(json.loads(body)["Blocks"]) == 100, "maxResults=50: %d" % st)


@check("check-24-bad-page-token")
def c24(env):
    sid = big(env)
    tok = env.ebs.list_snapshot_blocks(SnapshotId=sid, MaxResults=100)["NextToken"]
    raw = bytearray(base64.b64decode(tok))
    raw[3] ^= 1
    for bad in (base64.b64encode(bytes(raw)).decode(), "AAAA"):
        expect_error(lambda: env.ebs.list_snapshot_blocks(SnapshotId=sid, NextToken=bad), "ValidationException", "INVALID_PAGE_TOKEN", 400)


@check("check-25-lineage-list-and-get")
def c25(env):
    p = env.snapshot({0: fill(1), 7: fill(2)})
    c = env.snapshot({7: fill(3)}, parent=p)
    bl = env.list_all(c)
    want([b["BlockIndex"] for b in bl] == [0, 7], "child list %r" % bl)
    want(env.get(c, 0, token_for(bl, 0))[0] == fill(1), "child 0 is not the parent's data")
    want(env.get(c, 7, token_for(bl, 7))[0] == fill(3), "child 7 is not the child's data")


@check("check-26-changed-blocks-tokens")
def c26(env):
    p = env.snapshot({0: fill(1), 7: fill(2)})
    c = env.snapshot({7: fill(3)}, parent=p)
    r = env.ebs.list_changed_blocks(FirstSnapshotId=p, SecondSnapshotId=c)
    cb = r["ChangedBlocks"]
    want(len(cb) == 1 and cb[0]["BlockIndex"] == 7 and "FirstBlockToken" in cb[0] and "SecondBlockToken" in cb[0], "got %r" % cb)
    want(env.get(p, 7, cb[0]["FirstBlockToken"])[0] == fill(2), "first token")
    want(env.get(c, 7, cb[0]["SecondBlockToken"])[0] == fill(3), "second token")
    c2 = env.snapshot({9: fill(9)}, parent=p)
    cb = env.ebs.list_changed_blocks(FirstSnapshotId=p, SecondSnapshotId=c2)["ChangedBlocks"]
    want(len(cb) == 1 and cb[0]["BlockIndex"] == 9 and "FirstBlockToken" not in cb[0], "child-only: %r" % cb)
    want(env.get(c2, 9, cb[0]["SecondBlockToken"])[0] == fill(9), "child-only token")


@check("check-27-changed-blocks-empty-pages")
def c27(env):
    zero = bytes(BLOCK)
    s1 = env.snapshot({i: zero for i in range(201)})
    s2 = env.snapshot({200: fill(9)}, parent=s1)
    pages, empty, got, tok = 0, 0, [], None
    while True:
        kw = {"FirstSnapshotId": s1, "SecondSnapshotId": s2, "MaxResults": 100}
        if tok:
            kw["NextToken"] = tok
        r = env.ebs.list_changed_blocks(**kw)
        pages += 1
        empty += not r["ChangedBlocks"]
        got += [c["BlockIndex"] for c in r["ChangedBlocks"]]
        if "NextToken" not in r:
            break
        tok = r["NextToken"]
    want((pages, empty, got) == (3, 2, [200]), "got %d pages, %d empty, %r" % (pages, empty, got))


@check("check-28-unrelated-snapshots")
def c28(env):
    a = env.snapshot({0: fill(1)})
    b = env.snapshot({0: fill(1)})
    expect_error(lambda: env.ebs.list_changed_blocks(FirstSnapshotId=a, SecondSnapshotId=b), "ValidationException", "UNRELATED_SNAPSHOTS", 400)


@check("check-29-get-block-wire")
def c29(env):
    sid = env.snapshot({4: fill(0xAB)})
    data, r = env.get(sid, 4, token_for(env.list_all(sid), 4))
    h = r["ResponseMetadata"]["HTTPHeaders"]
    want(len(data) == BLOCK and data == fill(0xAB), "body")
    want(h.get("content-type") == "application/octet-stream", "Content-Type %r" % h.get("content-type"))
    want(r["DataLength"] == BLOCK and r["Checksum"] == b64sha(data) and r["ChecksumAlgorithm"] == "SHA256", "got %r" % {k: r[k] for k in ("DataLength", "Checksum", "ChecksumAlgorithm")})


@check("check-30-bad-block-token")
def c30(env):
    a = env.snapshot({0: fill(1), 1: fill(2)})
    b = env.snapshot({0: fill(1)})
    ta, tb = env.list_all(a), env.list_all(b)
    raw = bytearray(base64.b64decode(token_for(ta, 0)))
    raw[-1] ^= 1
    for idx, tok in ((1, token_for(ta, 0)), (0, token_for(tb, 0)), (0, base64.b64encode(bytes(raw)).decode())):
        expect_error(lambda: env.get(a, idx, tok), "ValidationException", "INVALID_BLOCK_TOKEN", 400)


@check("check-31-error-shape")
def c31(env):
    e = expect_error(lambda: env.ebs.list_snapshot_blocks(SnapshotId="snap-0123456789abcdef0"), "ResourceNotFoundException", "SNAPSHOT_NOT_FOUND", 404)
    h = e.response["ResponseMetadata"]["HTTPHeaders"]
    want(h.get("x-amzn-errortype") == "ResourceNotFoundException" and h.get("content-type") == "application/json", "headers %r" % h)
    want(e.response["Error"]["Message"], "no Message")
    expect_error(lambda: env.ebs.list_snapshot_blocks(SnapshotId="vol-123"), "ValidationException", "INVALID_SNAPSHOT_ID", 400)


@check("check-32-request-id")
def c32(env):
    r = env.ebs.start_snapshot(VolumeSize=1)
    want(re.fullmatch(r"[0-9a-f-]{36}", r["ResponseMetadata"].get("RequestId", "")), "RequestId %r" % r["ResponseMetadata"])
    try:
        env.ebs.list_snapshot_blocks(SnapshotId="snap-0123456789abcdef0")
    except ClientError as e:
        want(re.fullmatch(r"[0-9a-f-]{36}", e.response["ResponseMetadata"].get("RequestId", "")), "error RequestId missing")


@check("check-34-internal-error-retried")
def c34(env):
    sid = env.start(Description="ebsfake:fail-first-put")
    r = env.put(sid, 5, fill(5))
    want(r["ResponseMetadata"]["RetryAttempts"] == 1, "RetryAttempts %r, want 1 (was the 500 injected?)" % r["ResponseMetadata"]["RetryAttempts"])
    env.complete(sid, {5: fill(5)})
    want([b["BlockIndex"] for b in env.list_all(sid)] == [5], "block not stored exactly once")


def main():
    if len(sys.argv) != 2:
        print("usage: conformance.py URL", file=sys.stderr)
        return 2
    env = Env(sys.argv[1])
    failed = 0
    for name, fn in RESULTS:
        try:
            fn(env)
            print("ok   %s" % name)
        except CheckFailed as e:
            failed += 1
            print("FAIL %s: %s" % (name, e))
        except Exception as e:  # noqa: BLE001 - report and continue
            failed += 1
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e))
            traceback.print_exc(file=sys.stderr)
    print("%d checks, %d failed (boto3 %s)" % (len(RESULTS), failed, boto3.__version__))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
