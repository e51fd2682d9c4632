"""Download benchmark: peak memory and throughput of the artifact streamer.

Run from the repository root with the project's Python:
``.venv/bin/python bench/download.py [--size 1GiB] [--part-size 8MiB] [--concurrency 4]``.

Three processes serve, each measurement runs in a fresh one:

- moto in server mode (``python -m moto.server``): S3, holding the objects in its own memory;
- a loopback HTTP server generating a deterministic file of ``--size`` bytes on the fly
  (with ``Content-Length``; never held in memory);
- per measurement a child process whose peak RSS (``VmHWM``) covers only that download:
  1. the streamer (``ArtifactStreamer``, real boto3 to the moto endpoint, real httpx);
  2. the naive way: read the whole body, then one ``put_object``;
  3. a plain copy of the same URL to /dev/null with httpx (the throughput ceiling);
  4. the streamer into a discarding S3 stub: its own overhead, without moto's;
  5. moto's floor: the same number of bytes, already in memory, stored with one
     ``put_object`` and with a bare multipart upload (no download, hashing, checksums or
     tag). No streamer into this moto can be faster, so ``floor / plain copy`` bounds the
     throughput ratio any implementation could reach here;
  6. what a user would pick: boto3's ``upload_fileobj`` (default ``TransferConfig``) of the
     same download as a non-seekable stream, computing the same SHA-256 as it reads, into
     the same moto: ``ratio_vs_upload_fileobj`` is the streamer's throughput over this one.

Afterwards the stored object is read back from moto and its size and SHA-256 compared with the
generated file's. Prints readable figures, then one JSON object as the last line. Targets
(reported, not asserted): streamer peak RSS <= 150 MiB and independent of the size;
``ratio_vs_upload_fileobj`` >= 1.2; the streamer into the discarding stub >= 0.8 x the plain
copy (``null_sink_ratio_vs_plain``). ``--smoke`` runs it all on a 12 MiB file.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import resource
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from printflow_tools.bench_servers import start_moto, stop_processes

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024
BLOCK = 1 * MiB
BUCKET = "printflow-bench"
KEY = "orders/bench/1001/job-1/artifact.bin"
NAIVE_KEY = "orders/bench/1001/job-1/naive.bin"
FLOOR_KEY = "orders/bench/1001/job-1/floor.bin"
FILEOBJ_KEY = "orders/bench/1001/job-1/upload-fileobj.bin"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "printflow-bench",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
}
_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "kb": 1000,
    "m": MiB,
    "mib": MiB,
    "mb": 1000**2,
    "g": 1024 * MiB,
    "gib": 1024 * MiB,
    "gb": 1000**3,
}


def parse_size(text: str) -> int:
    """``1073741824``, ``256MiB``, ``1GiB``, ``500MB`` -> bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1073741824, 256MiB, 1GiB)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


# -- the generated file --------------------------------------------------------------------------


def file_blocks(size: int) -> Iterator[bytes]:
    """The benchmark file, 1 MiB at a time: a fixed random block stamped with its index."""
    base = hashlib.shake_256(b"printflow bench").digest(BLOCK)
    for index, start in enumerate(range(0, size, BLOCK)):
        block = struct.pack(">Q", index) + base[8:]
        yield block[: min(BLOCK, size - start)]


def file_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for block in file_blocks(size):
        digest.update(block)
    return digest.hexdigest()


def serve_file(size: int) -> None:
    """Child process: serve the generated file at every path, print the port, run forever."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            with contextlib.suppress(OSError):
                for block in file_blocks(size):
                    self.wfile.write(block)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


# -- measurements (each in its own child process) ------------------------------------------------


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def s3_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(read_timeout=600, retries={"mode": "standard", "max_attempts": 2})
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=config)


class FinishTimer:
    """Wraps the S3 client to time what happens after the last byte: complete and tag.

    moto's CompleteMultipartUpload works on the whole object in Python (seconds per GiB); real
    S3 does it server-side. Reported apart, so the streaming phase can be judged on its own.
    """

    FINISH = ("complete_multipart_upload", "put_object_tagging", "put_object")

    def __init__(self, client: Any) -> None:
        self._client = client
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in self.FINISH:
            return attribute

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


class HashingReader:
    """A non-seekable file over an iterator of chunks, hashing what is read (SHA-256).

    ``read(n)`` returns ``n`` bytes until the end, as a file does: boto3 makes one part of
    each read of a non-seekable stream, so short reads would make tiny parts.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = bytearray()
        self._done = False
        self.digest = hashlib.sha256()
        self.size = 0

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._pending) < size):
            chunk = next(self._chunks, None)
            if chunk is None:
                self._done = True
            else:
                self._pending += chunk
        taken = len(self._pending) if size < 0 else min(size, len(self._pending))
        data = bytes(self._pending[:taken])
        del self._pending[:taken]
        self.digest.update(data)
        self.size += len(data)
        return data


class NullS3:
    """An S3 client that accepts every part and keeps nothing: the streamer's own overhead
    (buffers, SHA-256, threads) without moto's, for comparison with the plain copy."""

    def create_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        return {"UploadId": "null"}

    def upload_part(self, *, PartNumber: int, **kwargs: Any) -> dict[str, Any]:
        return {"ETag": f'"{PartNumber}"'}

    def complete_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        return {"ETag": '"null"'}

    def put_object_tagging(self, **kwargs: Any) -> dict[str, Any]:
        return {}

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        return {"ETag": '"null"'}

    def abort_multipart_upload(self, **kwargs: Any) -> dict[str, Any]:
        return {}


def measure(
    mode: str, url: str, endpoint: str, size: int, part_size: int, concurrency: int
) -> None:
    """Child process: run one way of fetching ``url``; print a JSON line with the figures."""
    import httpx

    if mode in ("streamer", "streamer-null"):
        from printflow.download import ArtifactStreamer
        from printflow.net import EgressGuard, EgressPolicy, guarded_client

        netloc = httpx.URL(url).netloc.decode()
        guard = EgressGuard(EgressPolicy.parse(netloc))
        http = guarded_client(guard, timeout=30.0)
        finish = FinishTimer(s3_client(endpoint) if mode == "streamer" else NullS3())
        streamer = ArtifactStreamer(
            finish,
            BUCKET,
            http,
            guard,
            min_part_size=part_size,
            upload_concurrency=concurrency,
        )
        baseline = rss_mib("VmRSS")
        cpu_start = cpu_seconds()
        start = time.perf_counter()
        stored = streamer.stream(
            url,
            {},
            KEY,
            content_type=None,
            declared_size=size,
            metadata={"order-id": "1001", "job-id": "job-1"},
            deadline=time.monotonic() + 3600,
        )
        seconds = time.perf_counter() - start
        extra = {
            "sha256": stored.sha256,
            "stored_size": stored.size,
            "finish_s": finish.seconds,
            "streaming_mib_per_s": size / MiB / (seconds - finish.seconds),
        }
    elif mode in ("moto-floor-put", "moto-floor-multipart"):
        # The least work moto must do to hold the file, with the bytes already in memory: no
        # download, no hashing, no checksums, no tag. No streamer can beat this figure.
        from concurrent.futures import ThreadPoolExecutor

        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            config=Config(read_timeout=600, request_checksum_calculation="when_required"),
        )
        baseline = rss_mib("VmRSS")
        if mode == "moto-floor-put":
            body = b"".join(file_blocks(size))
            cpu_start = cpu_seconds()
            start = time.perf_counter()
            client.put_object(Bucket=BUCKET, Key=FLOOR_KEY, Body=body)
        else:
            part = bytes(part_size)
            count = -(-size // part_size)
            cpu_start = cpu_seconds()
            start = time.perf_counter()
            upload_id = client.create_multipart_upload(Bucket=BUCKET, Key=FLOOR_KEY)["UploadId"]

            def upload(number: int) -> dict[str, Any]:
                body = part if number < count else part[: size - (count - 1) * part_size]
                response = client.upload_part(
                    Bucket=BUCKET, Key=FLOOR_KEY, UploadId=upload_id, PartNumber=number, Body=body
                )
                return {"ETag": response["ETag"], "PartNumber": number}

            with ThreadPoolExecutor(concurrency) as pool:
                parts = list(pool.map(upload, range(1, count + 1)))
            client.complete_multipart_upload(
                Bucket=BUCKET, Key=FLOOR_KEY, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        seconds = time.perf_counter() - start
        extra = {}
    elif mode == "upload-fileobj":
        # What a user would pick: boto3's managed transfer (its default TransferConfig: 8 MiB
        # parts, 10 threads) reading the same download as a non-seekable stream, with the
        # same SHA-256 computed on the way, into the same moto.
        from boto3.s3.transfer import TransferConfig

        client = s3_client(endpoint)
        baseline = rss_mib("VmRSS")
        cpu_start = cpu_seconds()
        start = time.perf_counter()
        with (
            httpx.Client(trust_env=False, timeout=30.0) as http,
            http.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response,
        ):
            reader = HashingReader(response.iter_raw())
            client.upload_fileobj(reader, BUCKET, FILEOBJ_KEY, Config=TransferConfig())
        seconds = time.perf_counter() - start
        extra = {"sha256": reader.digest.hexdigest(), "stored_size": reader.size}
    elif mode == "naive":
        client = s3_client(endpoint)
        baseline = rss_mib("VmRSS")
        cpu_start = cpu_seconds()
        start = time.perf_counter()
        with httpx.Client(trust_env=False, timeout=30.0) as http:
            body = http.get(url).content
        client.put_object(Bucket=BUCKET, Key=NAIVE_KEY, Body=body)
        seconds = time.perf_counter() - start
        extra = {"stored_size": len(body)}
    elif mode == "plain":
        baseline = rss_mib("VmRSS")
        cpu_start = cpu_seconds()
        start = time.perf_counter()
        copied = 0
        with (
            httpx.Client(trust_env=False, timeout=30.0) as http,
            http.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response,
            open(os.devnull, "wb") as sink,
        ):
            for chunk in response.iter_bytes():
                sink.write(chunk)
                copied += len(chunk)
        seconds = time.perf_counter() - start
        extra = {"stored_size": copied}
    else:
        raise SystemExit(f"unknown mode {mode}")
    figures = {
        "mode": mode,
        "seconds": seconds,
        "mib_per_s": size / MiB / seconds,
        "baseline_rss_mib": baseline,
        "peak_rss_mib": rss_mib("VmHWM"),
        "cpu_s": cpu_seconds() - cpu_start,
        **extra,
    }
    print(json.dumps(figures), flush=True)


# -- orchestration -------------------------------------------------------------------------------


def run_child(args: list[str], children: list[subprocess.Popen[bytes]]) -> dict[str, Any]:
    process = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, env={**os.environ, **AWS_ENV}
    )
    children.append(process)
    out, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"measurement {args[1]} failed with exit code {process.returncode}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def verify(endpoint: str, size: int, expected_sha: str) -> dict[str, Any]:
    """Read the stored object back from moto: its size and SHA-256 must be the file's."""
    client = s3_client(endpoint)
    head = client.head_object(Bucket=BUCKET, Key=KEY)
    tag_set = client.get_object_tagging(Bucket=BUCKET, Key=KEY)["TagSet"]
    tags = {tag["Key"]: tag["Value"] for tag in tag_set}
    digest = hashlib.sha256()
    body = client.get_object(Bucket=BUCKET, Key=KEY)["Body"]
    for chunk in iter(lambda: body.read(BLOCK), b""):
        digest.update(chunk)
    return {
        "size_ok": head["ContentLength"] == size,
        "sha256_ok": digest.hexdigest() == expected_sha,
        "tag_sha256_ok": tags.get("sha256") == expected_sha,
        "uploads_left": len(client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=parse_size, default=1024 * MiB, help="e.g. 256MiB, 1GiB")
    parser.add_argument("--part-size", type=parse_size, default=8 * MiB)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="part uploads in flight (default: the streamer's)",
    )
    parser.add_argument("--skip-naive", action="store_true", help="skip the naive measurement")
    parser.add_argument("--serve-file", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help="tiny run for CI (seconds)")
    args = parser.parse_args()
    if args.smoke:
        args.size, args.part_size, args.skip_naive = 12 * MiB, 5 * MiB, True
    if args.concurrency is None:
        # Imported here: the measurement children import only what their own mode needs.
        from printflow.download.streaming import DEFAULT_UPLOAD_CONCURRENCY

        args.concurrency = DEFAULT_UPLOAD_CONCURRENCY

    if args.serve_file:
        serve_file(args.size)
        return
    if args.measure:
        measure(args.measure, args.url, args.endpoint, args.size, args.part_size, args.concurrency)
        return

    os.environ.update(AWS_ENV)
    # Ctrl-C and SIGTERM both unwind through the finally below, which stops every child.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    children: list[subprocess.Popen[bytes]] = []
    try:
        moto, endpoint = start_moto()
        children.append(moto)
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve-file", "--size", str(args.size)],
            stdout=subprocess.PIPE,
        )
        children.append(server)
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline())}/task/1/download"
        s3_client(endpoint).create_bucket(Bucket=BUCKET)

        print(f"file: {args.size / MiB:.0f} MiB generated on the fly at {url}")
        expected_sha = file_sha256(args.size)
        common = ["--url", url, "--endpoint", endpoint, "--size", str(args.size)]
        tuning = ["--part-size", str(args.part_size), "--concurrency", str(args.concurrency)]
        plain = run_child(["--measure", "plain", *common], children)
        streamer = run_child(["--measure", "streamer", *common, *tuning], children)
        fileobj = run_child(["--measure", "upload-fileobj", *common], children)
        null = run_child(["--measure", "streamer-null", *common, *tuning], children)
        floor_put = run_child(["--measure", "moto-floor-put", *common], children)
        floor_parts = run_child(["--measure", "moto-floor-multipart", *common, *tuning], children)
        checks = verify(endpoint, args.size, expected_sha)
        naive = None if args.skip_naive else run_child(["--measure", "naive", *common], children)
    finally:
        stop_processes(children)

    ratio = streamer["mib_per_s"] / plain["mib_per_s"]
    vs_fileobj = streamer["mib_per_s"] / fileobj["mib_per_s"]
    fileobj_sha_ok = fileobj["sha256"] == expected_sha
    print(
        f"streamer: peak RSS {streamer['peak_rss_mib']:.1f} MiB "
        f"(after imports {streamer['baseline_rss_mib']:.1f} MiB; target <= 150), "
        f"{streamer['mib_per_s']:.0f} MiB/s in {streamer['seconds']:.1f} s "
        f"(parts of {args.part_size // MiB} MiB, {args.concurrency} in flight; "
        f"{streamer['cpu_s']:.1f} CPU s in this process)"
    )
    print(
        f"  of which moto's complete + tag: {streamer['finish_s']:.1f} s; "
        f"streaming phase alone: {streamer['streaming_mib_per_s']:.0f} MiB/s"
    )
    print(
        f"boto3 upload_fileobj of the same non-seekable download (default TransferConfig, "
        f"SHA-256 computed): {fileobj['mib_per_s']:.0f} MiB/s in {fileobj['seconds']:.1f} s, "
        f"peak RSS {fileobj['peak_rss_mib']:.1f} MiB (sha256 {'ok' if fileobj_sha_ok else 'WRONG'})"
    )
    print(f"streamer / upload_fileobj: {vs_fileobj:.2f} (target >= 1.2)")
    if naive is not None:
        print(
            f"naive (read all, then put_object): peak RSS {naive['peak_rss_mib']:.1f} MiB, "
            f"{naive['mib_per_s']:.0f} MiB/s"
        )
    print(
        f"plain copy to /dev/null: {plain['mib_per_s']:.0f} MiB/s, "
        f"peak RSS {plain['peak_rss_mib']:.1f} MiB"
    )
    print(
        f"streamer into a discarding S3 stub (its own overhead): {null['mib_per_s']:.0f} MiB/s, "
        f"peak RSS {null['peak_rss_mib']:.1f} MiB"
    )
    best_floor = max(floor_put["mib_per_s"], floor_parts["mib_per_s"])
    print(
        f"moto alone storing the same bytes from memory (no download, hashing, checksums or "
        f"tag): one put_object {floor_put['mib_per_s']:.0f} MiB/s, multipart "
        f"{floor_parts['mib_per_s']:.0f} MiB/s; so no streamer into this moto can pass "
        f"{best_floor / plain['mib_per_s']:.2f} of the plain copy"
    )
    print(f"streamer throughput / plain copy: {ratio:.2f} (target >= 0.5)")
    print(f"streamer throughput / moto's floor: {streamer['mib_per_s'] / best_floor:.2f}")
    print(
        f"stored object: size {'ok' if checks['size_ok'] else 'WRONG'}, "
        f"sha256 {'ok' if checks['sha256_ok'] else 'WRONG'}, "
        f"sha256 tag {'ok' if checks['tag_sha256_ok'] else 'WRONG'}, "
        f"multipart uploads left: {checks['uploads_left']}"
    )
    figures = {
        "bytes": args.size,
        "part_size": args.part_size,
        "upload_concurrency": args.concurrency,
        "peak_rss_mib": round(streamer["peak_rss_mib"], 1),
        "baseline_rss_mib": round(streamer["baseline_rss_mib"], 1),
        "mib_per_s": round(streamer["mib_per_s"], 1),
        "seconds": round(streamer["seconds"], 2),
        "finish_s": round(streamer["finish_s"], 2),
        "streaming_mib_per_s": round(streamer["streaming_mib_per_s"], 1),
        "naive_peak_rss_mib": None if naive is None else round(naive["peak_rss_mib"], 1),
        "naive_mib_per_s": None if naive is None else round(naive["mib_per_s"], 1),
        "plain_copy_mib_per_s": round(plain["mib_per_s"], 1),
        "throughput_ratio_vs_plain": round(ratio, 3),
        "streaming_ratio_vs_plain": round(streamer["streaming_mib_per_s"] / plain["mib_per_s"], 3),
        "null_sink_mib_per_s": round(null["mib_per_s"], 1),
        "null_sink_peak_rss_mib": round(null["peak_rss_mib"], 1),
        "null_sink_ratio_vs_plain": round(null["mib_per_s"] / plain["mib_per_s"], 3),
        "upload_fileobj_mib_per_s": round(fileobj["mib_per_s"], 1),
        "upload_fileobj_peak_rss_mib": round(fileobj["peak_rss_mib"], 1),
        "upload_fileobj_sha256_ok": fileobj_sha_ok,
        "ratio_vs_upload_fileobj": round(vs_fileobj, 3),
        "moto_floor_put_mib_per_s": round(floor_put["mib_per_s"], 1),
        "moto_floor_multipart_mib_per_s": round(floor_parts["mib_per_s"], 1),
        "best_possible_ratio_vs_plain": round(best_floor / plain["mib_per_s"], 3),
        "streamer_vs_moto_floor": round(streamer["mib_per_s"] / best_floor, 3),
        **checks,
    }
    print(json.dumps(figures))
    if not (checks["size_ok"] and checks["sha256_ok"] and checks["tag_sha256_ok"]):
        raise SystemExit("the stored object does not match the source")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        raise SystemExit("interrupted; servers stopped") from None
