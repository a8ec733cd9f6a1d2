"""Load test of `mmprm serve-prm` on loopback: dynamic batching on against off.

The tiny PRM is served by the real command in its own process; C client
threads (default 16) each send one problem with K candidates (default 4),
wait for the answer and send the next, for a fixed duration; the run stops by
itself. Reported per mode: requests/s, candidates/s, p50/p99 latency, errors
(any non-200 or wrong-shaped answer), the server's mean requests per model
call; and the figure: the batching-on/off throughput ratio, same model,
same requests, same run.

On one CPU thread the tiny PRM's forward costs time in proportion to its
rows, so batching has little per-call cost to share there. A second pair of
runs serves a stand-in whose call costs a fixed time whatever its size (as a
GPU's does below saturation; `--fixed-cost-ms`, default 30) with the same
server code in-process: it measures what the batching itself delivers. It is
a stand-in, and reported as one.

Run by hand:  .venv/bin/python benchmarks/prm_service_load.py [--clients 16] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import torch

from mmprm.data import load_problems
from mmprm.data.synth import generate_synthetic
from mmprm.policy.tiny.model import new_tiny_policy
from mmprm.prm.model import build_prm, save_prm
from mmprm.prm.schemes import get_scheme


def tiny_prm(out: Path, problems) -> Path:
    model, processor = new_tiny_policy([p.question for p in problems], seed=3)
    prm = build_prm(model, processor, get_scheme("mmprm"), "token")
    with torch.no_grad():
        emb = prm.backbone.get_input_embeddings().weight
        emb.add_(0.5 * torch.randn(emb.shape, generator=torch.Generator().manual_seed(0)))
    return save_prm(prm, processor, get_scheme("mmprm"), out)


def bodies(problems, k: int) -> list[dict]:
    from mmprm.io import image_data_uri

    out = []
    for p in problems:
        ref = [s["text"] for s in p.meta["reference_steps"]]
        cands = [ref] + [ref[:-1] + [f"So the answer is {j}."] for j in range(1, k)]
        out.append({"items": [{"id": p.id, "question": p.question, "images": [image_data_uri(i) for i in p.images],
                               "candidates": cands}]})
    return out


def serve(prm_dir: Path, batching: bool) -> tuple[subprocess.Popen, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    flag = "--batching" if batching else "--no-batching"
    proc = subprocess.Popen([sys.executable, "-m", "mmprm.cli", "serve-prm", "--prm", str(prm_dir), "--port",
                             str(port), flag], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("serve-prm did not start")


class FixedCostPRM:
    """Scores nothing real: each call sleeps `cost` seconds whatever its size, then answers 0.5 per step."""

    name, bounded = "fixed-cost stand-in", True

    def __init__(self, cost: float):
        self.cost = cost

    def score_many(self, items):
        time.sleep(self.cost)
        return [[[0.5] * len(steps) for steps in cands] for _, cands in items]

    def close(self) -> None:
        pass


def serve_in_process(prm, batching: bool):
    """The same app in a thread of this process (the stand-in costs no CPU)."""
    import uvicorn

    from mmprm.serve.prm_server import PRMServeConfig, create_prm_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_prm_app(prm, PRMServeConfig(batching=batching)),
                                           log_level="critical"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()

    return stop, f"http://127.0.0.1:{sock.getsockname()[1]}"


def load(url: str, reqs: list[dict], clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = [0]
    candidates = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(c: int) -> None:
        with httpx.Client(timeout=60) as http:
            k = c
            while time.monotonic() < stop:
                body = reqs[k % len(reqs)]
                k += clients
                start = time.monotonic()
                try:
                    r = http.post(f"{url}/v1/score", json=body)
                    ok = r.status_code == 200 and len(r.json()["scores"][0]) == len(body["items"][0]["candidates"])
                except httpx.HTTPError:
                    ok = False
                with lock:
                    if ok:
                        latencies.append(time.monotonic() - start)
                        candidates[0] += len(body["items"][0]["candidates"])
                    else:
                        errors[0] += 1

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - began
    latencies.sort()
    pick = lambda q: round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1)  # noqa: E731
    health = httpx.get(f"{url}/health").json()
    return {"requests_per_s": round(len(latencies) / wall, 2), "candidates_per_s": round(candidates[0] / wall, 2),
            "p50_ms": pick(0.5), "p99_ms": pick(0.99), "errors": errors[0], "answered": len(latencies),
            "server_mean_requests_per_batch": health["mean_requests_per_batch"],
            "server_in_flight_after": health["in_flight"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--candidates", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--fixed-cost-ms", type=float, default=30.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        generate_synthetic(32, 9, tmp / "data", split="test")
        problems = load_problems(tmp / "data" / "problems.jsonl")
        prm_dir = tiny_prm(tmp / "prm", problems)
        reqs = bodies(problems, args.candidates)
        results = {}
        for mode, batching in (("batching_off", False), ("batching_on", True)):
            proc, url = serve(prm_dir, batching)
            try:
                load(url, reqs, args.clients, 3.0)  # warm-up, not counted
                results[mode] = load(url, reqs, args.clients, args.seconds)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        for mode, batching in (("standin_batching_off", False), ("standin_batching_on", True)):
            stop, url = serve_in_process(FixedCostPRM(args.fixed_cost_ms / 1000), batching)
            try:
                results[mode] = load(url, reqs, args.clients, args.seconds)
            finally:
                stop()
        for prefix in ("", "standin_"):
            on, off = results[f"{prefix}batching_on"], results[f"{prefix}batching_off"]
            results[f"{prefix}throughput_ratio_on_off"] = round(on["candidates_per_s"] / off["candidates_per_s"], 2)
        results["setup"] = {"clients": args.clients, "candidates_per_request": args.candidates,
                            "seconds": args.seconds, "server_torch_threads": 1,
                            "standin_fixed_cost_ms": args.fixed_cost_ms}
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
