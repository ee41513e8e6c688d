#!/usr/bin/env python3
"""Measures coder-lsp's language-server latency on a real codebase (no timing is asserted).

Usage: bench/lsp_latency.py BINARY ROOT [--queries N] [--index-dir DIR]

Starts `BINARY serve` on stdio with a fresh index directory, waits for the first indexing run
(reported as cold index time), then measures `semanticSearch` and `textDocument/hover` latency
(p50/p99 over N requests each, warm; hovers are on the name of each found symbol), and the time from a `didChange` that adds a new function to
the moment a search finds it. Prints a markdown table.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import tempfile
import threading
import time

QUERIES = [
    "open a database connection", "prepare and run a statement", "bind parameters to a query",
    "read a column value from a row", "begin and commit a transaction", "handle a busy database",
    "convert a value to sql", "error when the column type does not match", "backup the database",
    "load an extension", "register a scalar function", "iterate over query results",
    "escape an identifier", "set a pragma", "close the connection and release resources",
    "map rows into structs", "blob incremental io", "collation sequence", "savepoint rollback",
    "interrupt a long running query",
]


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
                self.cond.wait(120)
            return self.responses.pop(rid)

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("root")
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--index-dir", help="reuse this index base directory (default: a fresh one)")
    args = ap.parse_args()
    root = os.path.realpath(args.root)
    index_dir = args.index_dir or tempfile.mkdtemp(prefix="coder-lsp-bench-")
    log = open(os.path.join(index_dir, "server.log"), "w")
    client = Client(args.binary, log)
    uri = lambda p: "file://" + p
    started = time.perf_counter()
    client.request("initialize", {"processId": None, "rootUri": uri(root), "capabilities": {},
                                  "initializationOptions": {"indexDir": index_dir}})
    client.notify("initialized", {})
    while True:
        status = client.request("workspace/executeCommand", {"command": "indexStatus", "arguments": []})["result"]
        if not status["indexing"] and status["files"] > 0 and status["pending"] == 0:
            break
        time.sleep(0.5)
    cold = time.perf_counter() - started

    search_ms = []
    hits = []
    for i in range(args.queries):
        q = QUERIES[i % len(QUERIES)]
        t = time.perf_counter()
        res = client.request("workspace/executeCommand",
                             {"command": "semanticSearch", "arguments": [{"query": q, "topK": 10}]})
        search_ms.append((time.perf_counter() - t) * 1000)
        hits.extend(res.get("result") or [])

    random.seed(7)
    hover_ms = []
    hover_answered = 0
    targets = [h for h in hits if h.get("uri")]
    for i in range(args.queries):
        h = targets[i % len(targets)]
        pos = name_position(h)
        t = time.perf_counter()
        answer = client.request("textDocument/hover", {"textDocument": {"uri": h["uri"]}, "position": pos})
        hover_ms.append((time.perf_counter() - t) * 1000)
        hover_answered += answer.get("result") is not None

    # Edit → searchable: add a function to an open buffer and wait until search finds it.
    path = targets[0]["uri"][len("file://"):]
    text = open(path, encoding="utf-8", errors="replace").read()
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri(path), "languageId": "rust", "version": 1, "text": text}})
    edit_ms = []
    for n in range(5):
        name = f"zebra_quartz_checksum_{n}"
        new = text + f"\n/// Computes the zebra quartz checksum number {n}.\npub fn {name}(data: &[u8]) -> u32 {{ data.len() as u32 * {n + 3} }}\n"
        t = time.perf_counter()
        client.notify("textDocument/didChange", {"textDocument": {"uri": uri(path), "version": n + 2}, "contentChanges": [{"text": new}]})
        while True:
            res = client.request("workspace/executeCommand",
                                 {"command": "semanticSearch", "arguments": [{"query": f"zebra quartz checksum number {n}", "topK": 3}]})
            if any(r["name"] == name for r in res.get("result") or []):
                break
            time.sleep(0.02)
        edit_ms.append((time.perf_counter() - t) * 1000)

    status = client.request("workspace/executeCommand", {"command": "indexStatus", "arguments": []})["result"]
    client.request("shutdown", None)
    client.notify("exit", None)
    print(f"| measure | value |\n|---|---|")
    print(f"| files / chunks | {status['files']} / {status['chunks']} |")
    print(f"| {'cold' if not args.index_dir else 'reused'} index (initialize → indexed) | {cold:.1f} s |")
    print(f"| semanticSearch p50 / p99 | {pct(search_ms, 50):.1f} / {pct(search_ms, 99):.1f} ms |")
    print(f"| hover p50 / p99 ({hover_answered}/{len(hover_ms)} with related code) | {pct(hover_ms, 50):.1f} / {pct(hover_ms, 99):.1f} ms |")
    print(f"| didChange → searchable p50 (incl. 300 ms debounce) | {statistics.median(edit_ms):.0f} ms |")


if __name__ == "__main__":
    main()
