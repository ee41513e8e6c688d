//! A small MCP client that drives the real `coder-lsp mcp` binary over its stdin/stdout with
//! newline-delimited JSON-RPC, as agents' MCP clients do: request/response matching by id and a
//! log of everything the server sent that was not a response.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::oneshot;

type Pending = Arc<Mutex<HashMap<i64, oneshot::Sender<Value>>>>;

/// How long one request may take (the first ones wait for the model and the index to open).
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// The client side of one MCP session with a `coder-lsp mcp` process.
pub struct McpClient {
    stdin: ChildStdin,
    child: Child,
    pending: Pending,
    /// Messages from the server that were not responses to our requests.
    others: Arc<Mutex<Vec<Value>>>,
    next_id: i64,
}

impl McpClient {
    /// Starts `coder-lsp mcp --root ROOT --index-dir INDEX_BASE`; its stderr goes to `log`.
    pub fn spawn(binary: &Path, root: &Path, index_base: &Path, log: &Path) -> Self {
        let log = std::fs::File::create(log).expect("create server log");
        let mut child = tokio::process::Command::new(binary)
            .arg("mcp")
            .arg("--root")
            .arg(root)
            .arg("--index-dir")
            .arg(index_base)
            .env("HF_HUB_OFFLINE", "1")
            .env("CODER_LSP_LOG", "info")
            .env_remove("CODER_LSP_MODEL")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start coder-lsp mcp");
        let stdin = child.stdin.take().expect("server stdin");
        let stdout = child.stdout.take().expect("server stdout");
        let pending: Pending = Arc::default();
        let others: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (reader_pending, reader_others) = (pending.clone(), others.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let message: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
                    panic!("server wrote a line that is not JSON ({e}): {line}")
                });
                let is_response = message.get("method").is_none();
                let sender = message
                    .get("id")
                    .and_then(Value::as_i64)
                    .filter(|_| is_response)
                    .and_then(|id| reader_pending.lock().expect("lock").remove(&id));
                match sender {
                    Some(sender) => {
                        let _ = sender.send(message);
                    }
                    None => reader_others.lock().expect("lock").push(message),
                }
            }
        });
        Self {
            stdin,
            child,
            pending,
            others,
            next_id: 1,
        }
    }

    /// Writes one raw line (anything, valid or not) to the server.
    pub async fn send_raw(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to server");
        self.stdin.flush().await.expect("flush to server");
    }

    /// Sends a request without waiting: its id (for `notifications/cancelled`) and where its
    /// response will arrive.
    pub async fn send_request(
        &mut self,
        method: &str,
        params: Value,
    ) -> (i64, oneshot::Receiver<Value>) {
        let id = self.next_id;
        self.next_id += 1;
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("lock").insert(id, tx);
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(&message.to_string()).await;
        (id, rx)
    }

    /// Sends a request and returns the whole response message (`result` or `error`).
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let (_, rx) = self.send_request(method, params).await;
        tokio::time::timeout(REPLY_TIMEOUT, rx)
            .await
            .unwrap_or_else(|_| panic!("no reply to {method} within {REPLY_TIMEOUT:?}"))
            .expect("the server closed the connection")
    }

    /// Sends a request that must succeed and returns its `result`.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let reply = self.request(method, params).await;
        assert!(reply.get("error").is_none(), "{method} failed: {reply}");
        reply["result"].clone()
    }

    /// Sends a notification.
    pub async fn notify(&mut self, method: &str, params: Value) {
        let message = json!({"jsonrpc": "2.0", "method": method, "params": params});
        self.send_raw(&message.to_string()).await;
    }

    /// The MCP handshake: `initialize` then `notifications/initialized`; returns the
    /// initialize result.
    pub async fn initialize(&mut self) -> Value {
        let result = self
            .call(
                "initialize",
                json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "coder-tests", "version": "1.0.0"}
                }),
            )
            .await;
        self.notify("notifications/initialized", json!({})).await;
        result
    }

    /// Calls a tool and returns its result (`content`, `structuredContent`, `isError`); a
    /// protocol error fails the test.
    pub async fn tool(&mut self, name: &str, arguments: Value) -> Value {
        self.call("tools/call", json!({"name": name, "arguments": arguments}))
            .await
    }

    /// Messages from the server that were not responses (notifications, error replies to
    /// messages without a readable id).
    pub fn others(&self) -> Vec<Value> {
        self.others.lock().expect("lock").clone()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Closes stdin (the end of the session) and waits for the server to exit.
    pub async fn close(mut self) -> std::process::ExitStatus {
        drop(self.stdin);
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server did not exit after its input closed")
            .expect("wait for the server")
    }
}

/// The text of a tool result's first content block.
pub fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text content: {result}"))
        .to_string()
}
