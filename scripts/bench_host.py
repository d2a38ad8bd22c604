#!/usr/bin/env python3
"""Hearth's model host beside Debian's nginx, serving the same directory, in one run; and `hearth pull` beside curl.

1. Throughput and peak RSS with 1, 8 and 32 concurrent clients (curl processes) fetching 100 MB shards
   through `hearth host` (uvicorn, Python in the data path) and through nginx (sendfile, static
   files), as a ratio. The shards are sparse files: page-cache reads, so the servers are measured,
   not the disk. Peak RSS is VmHWM of the server's processes (nginx: master + workers).
2. Memory as file size grows: the same with one 1 GB shard, 8 clients; Hearth's RSS should stay flat.
3. `hearth pull` of a model (the built-in one when installed) from a second Hearth on loopback,
   beside curl fetching the same files from it.
Figures are printed and saved to .bench/host.json. Run from the repository root after scripts/setup:
    .venv/bin/python scripts/bench_host.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakemodel import write_fake_model  # noqa: E402 - after the path is set
from tests.support.front_servers import free_port, wait_for_port  # noqa: E402
from webapp.settings import Settings  # noqa: E402

HEARTH = [sys.executable, "-m", "webapp"]
NGINX = "/usr/sbin/nginx"
MB = 1_000_000
MODEL = "Bench-q0f32"



def peak_rss(pids: list[int]) -> int:
    """Sum of VmHWM (peak resident set) over the processes, in bytes."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                total += int(line.split()[1]) * 1024
    return total


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def make_models(root: Path, shard_bytes: int, shards: int) -> Path:
    models = root / f"models-{shard_bytes // MB}MB"
    model = write_fake_model(models, model_id=MODEL, shard_sizes=(1000,))
    records = json.loads((model / "tensor-cache.json").read_text())
    for index in range(shards):
        name = f"params_shard_{index}.bin"
        with open(model / name, "wb") as sparse:
            sparse.truncate(shard_bytes)
        records["records"].append({**records["records"][0], "dataPath": name, "nbytes": shard_bytes})
    records["records"] = records["records"][1:]
    (model / "tensor-cache.json").write_text(json.dumps(records))
    return models


def nginx_conf(models: Path, port: int, prefix: Path) -> Path:
    user = "user root;" if os.geteuid() == 0 else ""
    conf = prefix / "nginx.conf"
    conf.write_text(f"""{user}
worker_processes auto;
pid {prefix}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    sendfile on; tcp_nopush on; sendfile_max_chunk 2m; access_log off;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        location ~ ^/models/([^/]+)/resolve/[^/]+/([^/]+)$ {{ alias {models}/$1/$2; }}
    }}
}}
""")
    return conf


def fetch_all(urls: list[str]) -> tuple[int, float]:
    """(bytes, seconds) for curl processes fetching every URL at once."""
    start = time.monotonic()
    procs = [subprocess.Popen(["curl", "-sf", "-o", "/dev/null", "-w", "%{size_download}", url],
                              stdout=subprocess.PIPE, text=True) for url in urls]
    received = 0
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"curl failed with {proc.returncode}")
        received += int(out)
    return received, time.monotonic() - start


def measure(base: str, pids: list[int], clients: int, shards: int, repeat: int) -> dict[str, Any]:
    """The best of `repeat` rounds: a shared 2-core machine only ever makes a round slower."""
    urls = [f"{base}/models/{MODEL}/resolve/main/params_shard_{i % shards}.bin" for i in range(clients)]
    fetch_all(urls[:1])  # warm the page cache and the server
    rounds = [fetch_all(urls) for _ in range(repeat)]
    received, seconds = min(rounds, key=lambda r: r[1])
    return {"clients": clients, "bytes": received, "seconds": round(seconds, 3),
            "mb_per_s": round(received / seconds / MB, 1), "peak_rss_mb": round(peak_rss(pids) / MB, 1)}


class Servers:
    """`hearth host` and nginx over the same models directory."""

    def __init__(self, models: Path, work: Path) -> None:
        self.models, self.work = models, work

    def __enter__(self) -> Servers:
        self.hearth_port, self.nginx_port = free_port(), free_port()
        subprocess.run([*HEARTH, "host", str(self.models), "--print-config", "s3-cors"], check=True,
                       capture_output=True)  # imports warm
        self.hearth = subprocess.Popen([*HEARTH, "host", str(self.models), "--port", str(self.hearth_port)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        prefix = self.work / f"nginx-{self.nginx_port}"
        prefix.mkdir()
        self.nginx = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(nginx_conf(self.models, self.nginx_port,
                                       prefix)), "-e", "stderr", "-g", "daemon off;"])
        wait_for_port(self.hearth_port, timeout=120)
        wait_for_port(self.nginx_port, timeout=120)
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in (self.hearth, self.nginx):
            proc.terminate()
            proc.wait(timeout=20)

    def run(self, clients: int, shards: int, repeat: int) -> dict[str, Any]:
        hearth = measure(f"http://127.0.0.1:{self.hearth_port}", [self.hearth.pid], clients, shards, repeat)
        nginx = measure(f"http://127.0.0.1:{self.nginx_port}", [self.nginx.pid, *children(self.nginx.pid)],
                        clients, shards, repeat)
        return {"clients": clients, "hearth": hearth, "nginx": nginx,
                "throughput_ratio": round(hearth["mb_per_s"] / nginx["mb_per_s"], 3)}


def bench_pull(work: Path) -> dict[str, Any]:
    """`hearth pull` from a second Hearth beside curl fetching the same files, one after the other."""
    from webapp.catalog import index_all, scan_models

    settings = Settings()  # the user's models directory, where scripts/setup installs the built-in model
    index_all(settings)
    hosted, _ = scan_models(settings)
    source_models = settings.models_dir
    if not hosted:
        source_models = make_models(work / "pull-source", 32 * MB, 4)
        index_all(Settings(models_dir_override=source_models))
        hosted, _ = scan_models(Settings(models_dir_override=source_models))
    model = next((m for m in hosted if m.model.default), hosted[0])
    port = free_port()
    server = subprocess.Popen([*HEARTH, "host", str(source_models), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, timeout=120)
        endpoint = f"http://127.0.0.1:{port}/models"
        start = time.monotonic()
        subprocess.run([*HEARTH, "pull", model.model_id, "--endpoint", endpoint, "--models-dir",
                        str(work / "pulled"), "--json"], check=True, capture_output=True)
        pull_s = time.monotonic() - start
        urls = [f"{endpoint}/{model.model_id}/resolve/main/{r.path}" for r in model.manifest.files]
        start = time.monotonic()
        subprocess.run(["curl", "-sSf", "--no-progress-meter", "--parallel", "--parallel-max", "8", *[a for u in urls for a in
                        ("-o", "/dev/null", u)]], check=True)
        curl_s = time.monotonic() - start
    finally:
        server.terminate()
        server.wait(timeout=20)
    total = sum(r.size for r in model.manifest.files)
    return {"model": model.model_id, "bytes": total, "files": len(model.manifest.files),
            "hearth_pull_s": round(pull_s, 2), "curl_s": round(curl_s, 2), "ratio": round(curl_s / pull_s, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--repeat", type=int, default=3, help="rounds per measurement; the fastest counts")
    args = parser.parse_args()
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-host-") as tmp:
        work = Path(tmp)
        with Servers(make_models(work, 100 * MB, 8), work) as servers:
            results["100MB"] = [servers.run(clients, 8, args.repeat) for clients in args.clients]
        with Servers(make_models(work, 1000 * MB, 1), work) as servers:
            results["1GB"] = [servers.run(8, 1, args.repeat)]
        results["pull"] = bench_pull(work)
        shutil.rmtree(work / "pulled", ignore_errors=True)
    for size in ("100MB", "1GB"):
        for row in results[size]:
            print(f"{size} x{row['clients']:>2}: hearth {row['hearth']['mb_per_s']:>7} MB/s "
                  f"(peak RSS {row['hearth']['peak_rss_mb']} MB), nginx {row['nginx']['mb_per_s']:>7} MB/s "
                  f"(peak RSS {row['nginx']['peak_rss_mb']} MB), ratio {row['throughput_ratio']}")
    pull = results["pull"]
    print(f"pull {pull['model']} ({pull['bytes'] / MB:.0f} MB, {pull['files']} files): hearth pull "
          f"{pull['hearth_pull_s']} s, curl {pull['curl_s']} s")
    out = ROOT / ".bench" / "host.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
