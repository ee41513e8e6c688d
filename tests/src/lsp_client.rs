//! A small JSON-RPC client that drives the real coder-lsp server over an in-memory duplex:
//! Content-Length framing, request/response matching, automatic replies to the server's own
//! requests (progress tokens, capability registration), and a log of notifications.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

type Pending = Arc<Mutex<HashMap<i64, oneshot::Sender<Value>>>>;
type Writer = Arc<tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>>;

/// The client side of one server session.
pub struct LspClient {
    writer: Writer,
    /// The server process, when the client runs the real binary.
    _child: Option<tokio::process::Child>,
    pending: Pending,
    notifications: Arc<Mutex<Vec<Value>>>,
    next_id: i64,
}

async fn write_message(
    writer: &tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
    message: &Value,
) {
    let body = message.to_string();
    let mut w = writer.lock().await;
    w.write_all(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
        .await
        .expect("write to server");
    w.flush().await.expect("flush to server");
}

impl LspClient {
    /// Starts the real server in this process on an in-memory duplex, behind the same
    /// transport (`coder_lsp::lsp::serve`) that the binary puts on stdin/stdout.
    pub fn start() -> Self {
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        let (server_read, server_write) = tokio::io::split(server_io);
        tokio::spawn(coder_lsp::lsp::serve(server_read, server_write));
        let (read, write) = tokio::io::split(client_io);
        Self::connect(Box::new(read), Box::new(write), None)
    }

    /// Starts the real `coder-lsp` binary (`serve`) and talks to it over its stdin/stdout, as
    /// an editor does. Its stderr goes to `log`.
    pub fn spawn(binary: &std::path::Path, log: &std::path::Path) -> Self {
        let log = std::fs::File::create(log).expect("create server log");
        let mut child = tokio::process::Command::new(binary)
            .arg("serve")
            .env("HF_HUB_OFFLINE", "1")
            .env("CODER_LSP_LOG", "info")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start coder-lsp serve");
        let stdin = child.stdin.take().expect("server stdin");
        let stdout = child.stdout.take().expect("server stdout");
        Self::connect(Box::new(stdout), Box::new(stdin), Some(child))
    }

    fn connect(
        read: Box<dyn AsyncRead + Send + Unpin>,
        write: Box<dyn AsyncWrite + Send + Unpin>,
        child: Option<tokio::process::Child>,
    ) -> Self {
        let writer: Writer = Arc::new(tokio::sync::Mutex::new(write));
        let pending: Pending = Arc::default();
        let notifications: Arc<Mutex<Vec<Value>>> = Arc::default();
        let (reader_writer, reader_pending, reader_notes) =
            (writer.clone(), pending.clone(), notifications.clone());
        tokio::spawn(async move {
            let mut reader = BufReader::new(read);
            loop {
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(n) = line.strip_prefix("Content-Length: ") {
                        length = n.parse().expect("content length");
                    }
                }
                let mut body = vec![0u8; length];
                if reader.read_exact(&mut body).await.is_err() {
                    return;
                }
                let message: Value = serde_json::from_slice(&body).expect("server sent JSON");
                match (message.get("id"), message.get("method")) {
                    (Some(id), Some(_)) => {
                        // A request from the server: accept it.
                        reader_notes.lock().expect("lock").push(message.clone());
                        write_message(
                            &reader_writer,
                            &json!({"jsonrpc": "2.0", "id": id, "result": null}),
                        )
                        .await;
                    }
                    (Some(Value::Null), None) => {
                        // An error reply to a message the server could not read at all.
                        reader_notes.lock().expect("lock").push(message);
                    }
                    (Some(id), None) => {
                        let sender = id
                            .as_i64()
                            .and_then(|id| reader_pending.lock().expect("lock").remove(&id));
                        if let Some(sender) = sender {
                            let _ = sender.send(message);
                        }
                    }
                    (None, Some(_)) => reader_notes.lock().expect("lock").push(message),
                    (None, None) => {}
                }
            }
        });
        Self {
            writer,
            _child: child,
            pending,
            notifications,
            next_id: 1,
        }
    }

    /// Sends a request and returns the whole response object (`result` or `error`).
    pub async fn request(&mut self, method: &str, params: Value) -> Value {
        let rx = self.send_request(method, params).await;
        tokio::time::timeout(Duration::from_secs(120), rx)
            .await
            .unwrap_or_else(|_| panic!("no response within 120 s to {method}"))
            .expect("response channel")
    }

    /// Sends a request and, in the same write, `$/cancelRequest` for it; returns the response
    /// (the result when the server finished first, else a RequestCancelled error).
    pub async fn request_then_cancel(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("lock").insert(id, tx);
        let mut bytes = Vec::new();
        for message in [
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
            json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": id}}),
        ] {
            let body = message.to_string();
            bytes.extend(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
        }
        {
            let mut w = self.writer.lock().await;
            w.write_all(&bytes).await.expect("write to server");
            w.flush().await.expect("flush to server");
        }
        tokio::time::timeout(Duration::from_secs(120), rx)
            .await
            .unwrap_or_else(|_| panic!("no response within 120 s to cancelled {method}"))
            .expect("response channel")
    }

    /// Sends a request without waiting: the response arrives on the returned channel (so
    /// notifications such as a progress cancel can be sent meanwhile).
    pub async fn send_request(&mut self, method: &str, params: Value) -> oneshot::Receiver<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("lock").insert(id, tx);
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        write_message(&self.writer, &message).await;
        rx
    }

    /// Sends a request that must succeed and returns its `result`.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let response = self.request(method, params).await;
        assert!(
            response.get("error").is_none(),
            "{method} failed: {response}"
        );
        response["result"].clone()
    }

    /// The handshake for one workspace folder, `root` (named "repo"): `initialize` with these
    /// client `capabilities` and `initializationOptions`, then `initialized`. Returns the
    /// server's `InitializeResult`.
    pub async fn initialize(
        &mut self,
        root: &std::path::Path,
        capabilities: Value,
        options: Value,
    ) -> Value {
        let uri = crate::file_uri(root);
        let init = self
            .call(
                "initialize",
                json!({
                    "processId": null,
                    "rootUri": uri,
                    "workspaceFolders": [{"uri": uri, "name": "repo"}],
                    "capabilities": capabilities,
                    "initializationOptions": options
                }),
            )
            .await;
        self.notify("initialized", json!({})).await;
        init
    }

    /// Runs a `workspace/executeCommand` that must succeed.
    pub async fn command(&mut self, command: &str, argument: Value) -> Value {
        let arguments = if argument.is_null() {
            json!([])
        } else {
            json!([argument])
        };
        self.call(
            "workspace/executeCommand",
            json!({"command": command, "arguments": arguments}),
        )
        .await
    }

    /// Sends a notification.
    pub async fn notify(&mut self, method: &str, params: Value) {
        write_message(
            &self.writer,
            &json!({"jsonrpc": "2.0", "method": method, "params": params}),
        )
        .await;
    }

    /// Sends raw bytes (for malformed-input tests).
    pub async fn send_raw(&mut self, body: &str) {
        let mut w = self.writer.lock().await;
        w.write_all(format!("Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
            .await
            .expect("write raw");
        w.flush().await.expect("flush raw");
    }

    /// Notifications (and server requests) received so far.
    pub fn notifications(&self) -> Vec<Value> {
        self.notifications.lock().expect("lock").clone()
    }
}
