"""Time to the first useful answer of the language server on a cold workspace.

Starts `coder-lsp serve` on ROOT with an empty index directory, sends `semanticSearch` for QUERY
every quarter second from the moment the server is initialized, and prints each change of the top
5 with the seconds since the server started, and when TARGET (`path:name`) first enters the top 5.
The server answers while it indexes (from the files parsed so far, by words until their vectors
exist), so the answers improve over time. Only the standard library is used.

    python3 bench/first_answer.py target/release/coder-lsp bench/semble/corpora/tokio \\
        "spawn a future onto the runtime as a new task" --target src/runtime/runtime.rs:spawn
"""

import argparse
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary")
    parser.add_argument("root")
    parser.add_argument("query")
    parser.add_argument("--target", help="path:name of a result to wait for")
    parser.add_argument("--seconds", type=float, default=180, help="stop after this long")
    args = parser.parse_args()

    index_dir = tempfile.mkdtemp(prefix="coder-lsp-first-answer-")
    started = time.monotonic()
    server = subprocess.Popen(
        [args.binary, "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    inbox: "queue.Queue[dict]" = queue.Queue()
    threading.Thread(target=read_messages, args=(server.stdout, inbox), daemon=True).start()

    def send(message: dict) -> None:
        data = json.dumps(message).encode()
        server.stdin.write(b"Content-Length: %d\r\n\r\n" % len(data) + data)
        server.stdin.flush()

    def request(request_id: int, method: str, params: dict) -> dict:
        send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        while True:
            message = inbox.get(timeout=120)
            if "method" in message and "id" in message:
                # A request from the server (progress tokens, …): accept it.
                send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            elif message.get("id") == request_id:
                return message

    try:
        uri = "file://" + os.path.abspath(args.root)
        request(1, "initialize", {
            "processId": os.getpid(),
            "rootUri": uri,
            "workspaceFolders": [{"uri": uri, "name": os.path.basename(args.root)}],
            "capabilities": {},
            "initializationOptions": {"indexDir": index_dir},
        })
        send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
        shown = None
        found = False
        request_id = 10
        while time.monotonic() - started < args.seconds:
            request_id += 1
            answer = request(request_id, "workspace/executeCommand", {
                "command": "semanticSearch",
                "arguments": [{"query": args.query, "topK": 5}],
            })
            if "error" in answer:
                print(f"error: {answer['error']}", file=sys.stderr)
                return 1
            top = [f"{hit['path']}:{hit['name']}" for hit in answer.get("result") or []]
            elapsed = time.monotonic() - started
            if top != shown:
                shown = top
                print(f"{elapsed:7.2f} s  {', '.join(top) or '(nothing yet)'}", flush=True)
            if args.target and not found and args.target in top:
                found = True
                print(f"{elapsed:7.2f} s  {args.target} is in the top 5", flush=True)
            time.sleep(0.25)
    finally:
        server.kill()
        server.wait()
        shutil.rmtree(index_dir, ignore_errors=True)
    return 0


def read_messages(stream, inbox: "queue.Queue[dict]") -> None:
    """Puts each LSP message of `stream` (Content-Length framing) into `inbox`."""
    while True:
        headers = {}
        while True:
            line = stream.readline()
            if not line:
                return
            line = line.decode("ascii").strip()
            if not line:
                break
            key, _, value = line.partition(":")
            headers[key.lower()] = value.strip()
        inbox.put(json.loads(stream.read(int(headers["content-length"]))))


if __name__ == "__main__":
    sys.exit(main())
