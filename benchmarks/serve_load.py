"""Load on gated serve, over loopback: one reader typing, then many clients at once; a benchmark, not a test.

    python benchmarks/serve_load.py tour/models                 # the tour's models
    python benchmarks/serve_load.py tour/models --clients 50 --seconds 30 --run sentiment-lstm

It starts ``gated serve`` on the given runs in a child process (as a user
would, two workers with one thread each), waits for it to answer, and then:

1. one reader: ``--typing`` requests one after the other, each a 200-word
   review (the next word of it changed each time, as when typing), read back
   with the page's default payload;
2. ``--clients`` clients at once, each sending such reviews back to back for
   ``--seconds``: every answer is counted as served, refused (503) or dropped
   (no answer), with its latency;
3. ``/api/runs`` asked ten times while a generation streams.

Everything is bounded in count and time and the server is stopped at the end,
whatever happens. Latencies are milliseconds, from the client's side; the
client shares the machine's cores with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

WORDS = 200


def reviews(run_folder: Path, count: int) -> list[str]:
    """``count`` texts of exactly 200 words (as the model splits them), from the run's test reviews in a row."""
    from gated.runs import load_run

    task, _, _ = load_run(run_folder)
    words = [word for text in task.splits["test"].texts for word in task.vocab.tokenize(text)]
    return [" ".join(words[(i * 37) % (len(words) - WORDS):][:WORDS]) for i in range(count)]


def start_server(runs: list[str], port: int, workers: int | None) -> tuple[subprocess.Popen, float]:
    command = [sys.executable, "-m", "gated.cli", "serve", *runs, "--port", str(port)]
    if workers:
        command += ["--workers", str(workers)]
    started = time.perf_counter()
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = started + 120
    while time.perf_counter() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gated serve stopped: {server.stdout.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/runs", timeout=1).status_code == 200:
                return server, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError("gated serve did not answer within 120 s")


def stop(server: subprocess.Popen) -> str:
    server.send_signal(signal.SIGINT)
    try:
        out, _ = server.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        out, _ = server.communicate()
    return out


def summary(latencies: list[float]) -> dict:
    if not latencies:
        return {"count": 0}
    ms = np.array(latencies) * 1000
    return {"count": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "max_ms": round(float(ms.max()), 1)}


async def one_reader(base: str, run: str, texts: list[str], count: int, limit_s: float) -> dict:
    latencies = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        await http.post("/api/read", json={"run": run, "text": texts[0]})  # warm up
        stop_at = time.perf_counter() + limit_s
        for i in range(count):
            if time.perf_counter() > stop_at:
                break
            text = texts[i % len(texts)]
            started = time.perf_counter()
            response = await http.post("/api/read", json={"run": run, "text": text})
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
            assert len(response.json()["tokens"]) == WORDS
    return summary(latencies)


async def many_clients(base: str, run: str, texts: list[str], clients: int, seconds: float) -> dict:
    latencies, refused, dropped, sizes = [], 0, 0, []
    stop_at = 0.0

    async def client(k: int, http: httpx.AsyncClient) -> None:
        nonlocal refused, dropped
        i = k
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                response = await http.post("/api/read", json={"run": run, "text": texts[i % len(texts)]})
            except httpx.HTTPError:
                dropped += 1
                continue
            if response.status_code == 503:
                refused += 1
            elif response.status_code == 200:
                latencies.append(time.perf_counter() - started)
                sizes.append(len(response.content))
            else:
                dropped += 1
            i += clients

    # A connection of its own for each client, as separate browsers would have: one shared pool would
    # measure the pool's queueing as well as the server's.
    https = [httpx.AsyncClient(base_url=base, timeout=60) for _ in range(clients)]
    try:
        began = time.perf_counter()
        stop_at = began + seconds  # set now: making the clients took a while
        await asyncio.gather(*(client(k, http) for k, http in enumerate(https)))
        elapsed = time.perf_counter() - began
    finally:
        for http in https:
            await http.aclose()
    return {**summary(latencies), "clients": clients, "seconds": round(elapsed, 1), "refused": refused,
            "dropped": dropped, "requests_per_s": round(len(latencies) / elapsed, 1),
            "mean_response_kb": round(float(np.mean(sizes)) / 1024, 1) if sizes else None}


async def runs_during_generation(base: str, charlm: str | None) -> dict | None:
    if charlm is None:
        return None
    latencies = []
    query = {"run": charlm, "length": 2000}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, \
            http.stream("GET", "/api/generate", params=query) as stream:
        lines = stream.aiter_lines()
        chars = 0
        async for line in lines:
            chars += line == "event: char"
            if chars >= 20:
                break
        for _ in range(10):
            started = time.perf_counter()
            assert (await http.get("/api/runs")).status_code == 200
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)
        async for line in lines:  # the stream went on meanwhile
            chars += line == "event: char"
            if chars >= 40:
                break
    return {**summary(latencies), "characters_streamed_meanwhile": chars}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux: /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders (or a folder of runs) for gated serve")
    parser.add_argument("--run", default="sentiment-lstm", help="the run that reads (default sentiment-lstm)")
    parser.add_argument("--typing", type=int, default=200, help="requests of the one reader (default 200)")
    parser.add_argument("--clients", type=int, default=50, help="clients at once (default 50)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long they send (default 30)")
    parser.add_argument("--workers", type=int, default=None, help="the server's workers (default: its own)")
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    args = parser.parse_args(argv)

    folders = [Path(r) for r in args.runs]
    run_folder = next((f / args.run for f in folders if (f / args.run / "config.json").is_file()),
                      next((f for f in folders if f.name == args.run), None))
    if run_folder is None:
        parser.error(f"no run named {args.run} among {args.runs}")
    texts = reviews(run_folder, 64)
    port = free_port()
    server, startup = start_server(args.runs, port, args.workers)
    base = f"http://127.0.0.1:{port}"
    try:
        runs = httpx.get(base + "/api/runs").json()["runs"]
        charlm = next((r["name"] for r in runs if r["task"] == "charlm"), None)
        results = {
            "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start",
            "startup_s": round(startup, 1),
            "one_reader": asyncio.run(one_reader(base, args.run, texts, args.typing, 60)),
        }
        cpu_before = cpu_seconds(server.pid)
        results["many_clients"] = asyncio.run(many_clients(base, args.run, texts, args.clients, args.seconds))
        # The server's own CPU per answer: what the machine's cores can serve when nothing else runs on them.
        cpu = (cpu_seconds(server.pid) - cpu_before) / max(1, results["many_clients"]["count"])
        results["many_clients"]["server_cpu_ms_per_request"] = round(cpu * 1000, 1)
        results |= {
            "runs_while_generating": asyncio.run(runs_during_generation(base, charlm)),
        }
    finally:
        log = stop(server)
    results["server_log"] = log.strip().splitlines()
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
