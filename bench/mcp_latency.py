#!/usr/bin/env python3
"""Measures the MCP server's latency on a real codebase (no timing is asserted).

Usage: bench/mcp_latency.py BINARY ROOT [--queries N]

Copies ROOT (without .git) to a temporary directory, starts `BINARY mcp` there on stdio with a
fresh index directory and waits for the first
indexing run (cold index time). Then, owning the index, it measures `search_code` and
`get_context` (p50/p99 over N calls; each search first re-checks the workspace for changed files)
and the time from writing a new file to the first search that finds it. Finally it holds the
index's write lock itself, as a language server would, starts a second MCP server that therefore
only reads, and measures the same searches: the baseline without the re-check, in the same run.
Prints a markdown table.
"""
import argparse
import fcntl
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time

QUERIES = [
    "open a connection", "parse the configuration file", "retry after a failure",
    "read bytes from a stream", "handle an error and report it", "spawn a background task",
    "serialize a value to json", "wait for a timeout", "compare two strings ignoring case",
    "split text into lines", "walk a directory tree", "hash the contents of a file",
    "lock shared state", "format a message for the user", "parse command line arguments",
    "convert between units", "cache results of an expensive call", "close and release resources",
    "send a request and await the reply", "validate user input",
]


class Client:
    def __init__(self, binary, root, index_base, log):
        self.proc = subprocess.Popen(
            [binary, "mcp", "--root", root, "--index-dir", index_base],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
            env={**os.environ, "HF_HUB_OFFLINE": "1"})
        self.responses = {}
        self.cond = threading.Condition()
        self.next_id = 1
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            message = json.loads(line)
            if "id" in message and "method" not in message:
                with self.cond:
                    self.responses[message["id"]] = message
                    self.cond.notify_all()

    def send(self, message):
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def call(self, method, params):
        request_id = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        with self.cond:
            self.cond.wait_for(lambda: request_id in self.responses, timeout=600)
            reply = self.responses.pop(request_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def tool(self, name, arguments):
        result = self.call("tools/call", {"name": name, "arguments": arguments})
        if result.get("isError"):
            raise RuntimeError(f"{name}: {result['content'][0]['text']}")
        return result["structuredContent"]

    def start(self):
        self.call("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                 "clientInfo": {"name": "bench", "version": "1"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def timed(f):
    started = time.perf_counter()
    value = f()
    return (time.perf_counter() - started) * 1000, value


def percentiles(samples):
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def searches(client, count):
    return [timed(lambda q=QUERIES[i % len(QUERIES)]: client.tool(
        "search_code", {"query": q}))[0] for i in range(count)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("root")
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as base, open(os.path.join(base, "mcp.log"), "w") as log:
        root = os.path.realpath(os.path.join(base, "repo"))
        shutil.copytree(args.root, root, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        base = os.path.join(base, "index")
        writer = Client(args.binary, root, base, log)
        started = time.perf_counter()
        writer.start()
        while True:
            status = writer.tool("index_status", {})
            if not status["indexing"] and status["files"] > 0 and status["pending"] == 0:
                break
            time.sleep(0.2)
        rows.append(("cold index", f"{time.perf_counter() - started:.1f} s",
                     f"{status['files']} files, {status['chunks']} chunks"))
        index_dir = status["index_dir"]
        own = searches(writer, args.queries)
        context = [timed(lambda q=q: writer.tool("get_context", {"query": q, "token_budget": 2048}))[0]
                   for q in QUERIES[: min(len(QUERIES), args.queries)]]
        probe = os.path.join(root, "zz_bench_probe.py")
        with open(probe, "w") as f:
            f.write("def reticulate_splines(count):\n"
                    "    \"\"\"Reticulates the given number of splines.\"\"\"\n    return count\n")
        try:
            new_ms, found = timed(lambda: writer.tool("search_code", {"query": "reticulate splines"}))
            first = found["results"][0]["name"] if found["results"] else None
        finally:
            os.remove(probe)
        writer.tool("search_code", {"query": "forget the probe"})
        writer.close()

        # A stand-in for the editor's language server: hold the write lock ourselves.
        with open(os.path.join(index_dir, "lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            reader = Client(args.binary, root, base, log)
            reader.start()
            assert reader.tool("index_status", {})["read_only"]
            read = searches(reader, args.queries)
            reader.close()

    own_p50, own_p99 = percentiles(own)
    read_p50, read_p99 = percentiles(read)
    ctx_p50, ctx_p99 = percentiles(context)
    rows += [
        ("search_code, owner (re-check + search)", f"p50 {own_p50:.0f} ms, p99 {own_p99:.0f} ms",
         f"{own_p50 / read_p50:.2f}× the reader's p50"),
        ("search_code, reader (baseline)", f"p50 {read_p50:.0f} ms, p99 {read_p99:.0f} ms", "1.00×"),
        ("get_context 2048 tokens, owner", f"p50 {ctx_p50:.0f} ms, p99 {ctx_p99:.0f} ms", ""),
        ("new file → found by the next search", f"{new_ms:.0f} ms", f"first result: {first}"),
    ]
    print("| measure | value | note |\n| --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
