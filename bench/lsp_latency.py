#!/usr/bin/env python3
"""Measures coder-lsp's language server on a real Rust codebase (no timing is asserted).

Usage: bench/lsp_latency.py BINARY ROOT [--queries N] [--index-dir DIR] [--json]

Starts `BINARY serve` on stdio with a fresh index base directory (or DIR), and measures:
- cold index time (initialize → every chunk embedded) and the server's peak memory then;
- `semanticSearch` and `textDocument/hover` latency, p50/p99 over N requests each, warm (hovers
  are on the name of each found symbol);
- throughput and latency with 8 `semanticSearch` requests in flight at once;
- edit → searchable: a function added to an open buffer, until a search finds it, by
  `didChange` (which waits out the 300 ms typing debounce) and by `didSave` with the text (no
  debounce);
- the peak memory of the whole session.
Afterwards the buffer is put back to the file's text, so the index matches the disk again.
Prints a markdown table, or with --json one JSON object (bench/perf.py uses `measure`).
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time

# Questions about rustls, the codebase bench/perf.py indexes (and rusqlite, the earlier one).
QUERIES = [
    "send a fatal alert to the peer", "parse the server's certificate chain",
    "resume a session with a ticket", "negotiate the protocol version",
    "encrypt an outgoing record", "verify the signature on a handshake message",
    "choose a cipher suite from the client's offer", "derive traffic secrets after the handshake",
    "read application data from the connection", "limit how much plaintext is buffered",
    "handle a key update message", "check the server name against the certificate",
    "write the client hello extensions", "early data before the handshake completes",
    "export keying material", "close the connection cleanly with close_notify",
    "decode a length-prefixed vector", "store sessions in a cache", "quic transport parameters",
    "choose an ALPN protocol", "open a database connection", "bind parameters to a query",
]

CONCURRENCY = 8


class Client:
    def __init__(self, binary, log):
        self.proc = subprocess.Popen([binary, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=log, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        self.lock = threading.Lock()
        self.responses = {}
        self.cond = threading.Condition()
        self.next_id = 1
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        out = self.proc.stdout
        while True:
            line = out.readline()
            if not line:
                return
            if not line.lower().startswith(b"content-length"):
                continue
            length = int(line.split(b":")[1])
            while out.readline().strip():
                pass
            msg = json.loads(out.read(length))
            if "id" in msg and "method" in msg:
                self.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
            elif "id" in msg:
                with self.cond:
                    self.responses[msg["id"]] = msg
                    self.cond.notify_all()

    def send(self, msg):
        body = json.dumps(msg).encode()
        with self.lock:
            self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.proc.stdin.flush()

    def request(self, method, params):
        with self.cond:
            rid = self.next_id
            self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        with self.cond:
            while rid not in self.responses:
                if not self.cond.wait(300):
                    raise SystemExit(f"no answer to {method} in 300 s")
            return self.responses.pop(rid)

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def command(self, name, *arguments):
        return self.request("workspace/executeCommand",
                            {"command": name, "arguments": list(arguments)}).get("result")

    def peak_memory_mb(self):
        """VmHWM of the server process: the most resident memory it has used so far."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")


def name_position(hit):
    """The position of the symbol's name in its first lines (where a user would hover)."""
    start = hit["range"]["start"]["line"]
    lines = open(hit["uri"][len("file://"):], encoding="utf-8", errors="replace").read().split("\n")
    for line_no in range(start, min(start + 8, len(lines))):
        col = lines[line_no].find(hit["name"])
        if col >= 0:
            return {"line": line_no, "character": col + 1}
    return {"line": start, "character": 0}


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def search(client, query, top_k=10):
    return client.command("semanticSearch", {"query": query, "topK": top_k}) or []


def wait_until_found(client, query, name):
    while True:
        if any(r["name"] == name for r in search(client, query, 3)):
            return
        time.sleep(0.01)


def start_indexed(binary, root, index_base, log, poll=0.25):
    """Starts the server on `root` with its indexes under `index_base` and waits until the index
    is complete; returns the client and the seconds that took."""
    client = Client(binary, log)
    started = time.perf_counter()
    client.request("initialize", {"processId": None, "rootUri": "file://" + root,
                                  "capabilities": {},
                                  "initializationOptions": {"indexDir": index_base}})
    client.notify("initialized", {})
    while True:
        status = client.command("indexStatus")
        if not status["indexing"] and status["files"] > 0 and status["pending"] == 0:
            break
        time.sleep(poll)
    return client, time.perf_counter() - started


def measure(binary, root, index_base, n_queries=60):
    """Runs the whole session; returns a dict of measurements."""
    root = os.path.realpath(root)
    log = open(os.path.join(index_base, "server.log"), "w")
    uri = lambda p: "file://" + p
    client, cold = start_indexed(binary, root, index_base, log)
    cold_peak_mb = client.peak_memory_mb()

    search_ms, hits = [], []
    for i in range(n_queries):
        t = time.perf_counter()
        hits.extend(search(client, QUERIES[i % len(QUERIES)]))
        search_ms.append((time.perf_counter() - t) * 1000)

    hover_ms, hover_answered = [], 0
    targets = [h for h in hits if h.get("uri")]
    for i in range(n_queries):
        h = targets[i % len(targets)]
        t = time.perf_counter()
        answer = client.request("textDocument/hover", {"textDocument": {"uri": h["uri"]},
                                                       "position": name_position(h)})
        hover_ms.append((time.perf_counter() - t) * 1000)
        hover_answered += answer.get("result") is not None

    # 8 searches in flight at once, each thread sending its next as soon as one returns.
    concurrent_ms, lock = [], threading.Lock()
    per_thread = max(4, n_queries // CONCURRENCY)

    def worker(offset):
        for i in range(per_thread):
            t = time.perf_counter()
            search(client, QUERIES[(offset + i) % len(QUERIES)])
            with lock:
                concurrent_ms.append((time.perf_counter() - t) * 1000)

    t = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k * 3,)) for k in range(CONCURRENCY)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    concurrent_s = time.perf_counter() - t

    # Edit → searchable, in a Rust file that a search found.
    path = next(h["uri"][len("file://"):] for h in targets if h["uri"].endswith(".rs"))
    text = open(path, encoding="utf-8", errors="replace").read()
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri(path), "languageId": "rust",
                                                            "version": 1, "text": text}})
    version = 1
    edit_ms = {"didChange": [], "didSave": []}
    for n in range(10):
        for how in ("didChange", "didSave"):
            name = f"zebra_quartz_checksum_{how.lower()}_{n}"
            new = text + (f"\n/// Computes the zebra quartz checksum number {n} for {how}.\n"
                          f"pub fn {name}(data: &[u8]) -> u32 {{ data.len() as u32 * {n + 3} }}\n")
            version += 1
            t = time.perf_counter()
            client.notify("textDocument/didChange", {"textDocument": {"uri": uri(path), "version": version},
                                                     "contentChanges": [{"text": new}]})
            if how == "didSave":
                client.notify("textDocument/didSave", {"textDocument": {"uri": uri(path)}, "text": new})
            wait_until_found(client, f"zebra quartz checksum number {n} for {how}", name)
            edit_ms[how].append((time.perf_counter() - t) * 1000)

    # Put the buffer back to the file's text; the index then matches the disk again.
    version += 1
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri(path), "version": version},
                                             "contentChanges": [{"text": text}]})
    client.notify("textDocument/didSave", {"textDocument": {"uri": uri(path)}, "text": text})
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri(path)}})
    while any(r["name"].startswith("zebra_quartz") for r in search(client, "zebra quartz checksum number", 5)):
        time.sleep(0.05)

    status = client.command("indexStatus")
    session_peak_mb = client.peak_memory_mb()
    client.request("shutdown", None)
    client.notify("exit", None)
    client.proc.wait(30)
    return {
        "files": status["files"],
        "chunks": status["chunks"],
        "index_dir": status.get("indexDir"),
        "cold_index_s": cold,
        "cold_peak_mb": cold_peak_mb,
        "session_peak_mb": session_peak_mb,
        "search_ms_p50": pct(search_ms, 50), "search_ms_p99": pct(search_ms, 99),
        "hover_ms_p50": pct(hover_ms, 50), "hover_ms_p99": pct(hover_ms, 99),
        "hover_answered": hover_answered, "hovers": len(hover_ms),
        "concurrent_requests": len(concurrent_ms),
        "concurrent_per_s": len(concurrent_ms) / concurrent_s,
        "concurrent_ms_p50": pct(concurrent_ms, 50), "concurrent_ms_p99": pct(concurrent_ms, 99),
        "edit_change_ms_p50": statistics.median(edit_ms["didChange"]),
        "edit_save_ms_p50": statistics.median(edit_ms["didSave"]),
        "edit_save_ms_max": max(edit_ms["didSave"]),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("root")
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--index-dir", help="index base directory (default: a fresh one)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = measure(args.binary, args.root, args.index_dir or tempfile.mkdtemp(prefix="coder-lsp-bench-"),
                args.queries)
    if args.json:
        print(json.dumps(r))
        return
    print("| measure | value |\n|---|---|")
    print(f"| files / chunks | {r['files']} / {r['chunks']} |")
    print(f"| index (initialize → indexed) | {r['cold_index_s']:.1f} s, peak {r['cold_peak_mb']:.0f} MB |")
    print(f"| semanticSearch p50 / p99 | {r['search_ms_p50']:.1f} / {r['search_ms_p99']:.1f} ms |")
    print(f"| hover p50 / p99 | {r['hover_ms_p50']:.1f} / {r['hover_ms_p99']:.1f} ms |")
    print(f"| {CONCURRENCY} searches in flight | {r['concurrent_per_s']:.1f}/s, p50 {r['concurrent_ms_p50']:.1f} ms |")
    print(f"| didChange → searchable p50 (incl. 300 ms debounce) | {r['edit_change_ms_p50']:.0f} ms |")
    print(f"| didSave → searchable p50 | {r['edit_save_ms_p50']:.0f} ms |")


if __name__ == "__main__":
    main()
