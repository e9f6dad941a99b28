"""Load test of `app serve` on loopback: micro-batched against one request per forward.

    nice -n 10 python bench/serve_load.py [--requests 2000] [--concurrency 32] [--model REF]

Starts `app serve financial-sentiment` (127.0.0.1, a free port) twice: with micro-batching
(default settings) and with --no-batching, and sends the same requests to each from an
asyncio client: one real Financial PhraseBank sentence per request, `--concurrency`
in flight, each on its own keep-alive connection (a raw-asyncio HTTP/1.1 client, light on
CPU). Prints throughput, p50/p99 latency, errors (must be 0), and the ratio.
Without --model it first makes a quick artifact from all-MiniLM-L6-v2 (a few training
steps: the load, not the accuracy, is measured). The client shares the CPU with the server.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from _common import data_dir, read_column


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def quick_artifact(folder) -> str:
    import tunehub

    result = tunehub.run_task(
        "financial-sentiment", model="minilm", data=folder / "allagree_train.csv",
        eval_data=folder / "allagree_test.csv",
        overrides=["train.max_steps=4", "train.save_checkpoints=false",
                   "dataset.validation_fraction=0"])
    return result.artifact


def start_server(model: str, port: int, extra: list[str]) -> subprocess.Popen:
    app = os.path.join(os.path.dirname(sys.executable), "app")
    return subprocess.Popen([app, "serve", "financial-sentiment", "--model", model,
                             "--host", "127.0.0.1", "--port", str(port), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_ready(url: str, proc: subprocess.Popen) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if proc.poll() is not None:
                raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit("server did not start in 300 s")


async def post_all(port: int, texts: list[str], concurrency: int) -> dict:
    """Each of ``concurrency`` keep-alive connections POSTs one text at a time.

    The client speaks HTTP/1.1 over raw asyncio streams: it costs about 0.2 ms of CPU per
    request (httpx costs ~7 ms here), so the CPU the two share goes to the server."""
    latencies: list[float] = []
    errors = 0
    queue = list(enumerate(texts))

    async def worker():
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                _, text = queue.pop()
                body = json.dumps({"inputs": [text]}).encode()
                head = (f"POST /v1/predict HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: "
                        f"application/json\r\ncontent-length: {len(body)}\r\n\r\n").encode()
                start = time.perf_counter()
                writer.write(head + body)
                status = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                answer = await reader.readexactly(length)
                latencies.append(time.perf_counter() - start)
                errors += not (status.split()[1:2] == [b"200"]
                               and len(json.loads(answer)["outputs"]) == 1)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - start
    latencies.sort()
    return {"rps": len(texts) / seconds, "seconds": seconds, "errors": errors + len(texts) - len(latencies),
            "p50": statistics.median(latencies) * 1000,
            "p99": latencies[int(0.99 * (len(latencies) - 1))] * 1000}


async def forward_passes(url: str) -> int:
    import httpx

    async with httpx.AsyncClient() as client:
        return (await client.get(f"{url}/v1/tasks")).json()["tasks"][0].get("batches")


def run_mode(name: str, model: str, extra: list[str], texts: list[str], concurrency: int) -> dict:
    port = free_port()
    proc = start_server(model, port, extra)
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_ready(url, proc))
        asyncio.run(post_all(port, texts[:64], concurrency))  # warm-up
        result = asyncio.run(post_all(port, texts, concurrency))
        result["batches"] = asyncio.run(forward_passes(url))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print(f"{name:>22}: {result['rps']:7.1f} req/s | p50 {result['p50']:7.1f} ms | p99 "
          f"{result['p99']:7.1f} ms | errors {result['errors']} | forward passes "
          f"{result['batches']} (incl. warm-up) | load {os.getloadavg()[0]:.1f}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--model", help="an artifact (TASK@vN or folder); default: a quick one")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = data_dir("financial_phrasebank")
    pool = read_column(folder / "50agree_train.csv", "text")
    texts = [pool[i % len(pool)] for i in range(args.requests)]
    if not args.model:
        os.environ.setdefault("TUNEHUB_HOME", tempfile.mkdtemp(prefix="tunehub-bench-"))
    model = args.model or quick_artifact(folder)
    print(f"{args.requests} requests (1 text each), concurrency {args.concurrency}, model {model}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
    batched = run_mode("micro-batched", model, [], texts, args.concurrency)
    single = run_mode("one request/forward", model, ["--no-batching"], texts, args.concurrency)
    print(f"micro-batched / one-request-per-forward throughput: {batched['rps'] / single['rps']:.2f}x "
          f"(target >= 3x); errors {batched['errors'] + single['errors']} (must be 0)")


if __name__ == "__main__":
    main()
