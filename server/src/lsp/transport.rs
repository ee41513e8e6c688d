//! A guard in front of tower-lsp's transport: only well-formed JSON-RPC reaches the server.
//!
//! tower-lsp-server stops reading its input for good after one message it cannot decode
//! (invalid JSON, or JSON that is not a request or response), which would leave an editor with
//! a silent server. Here each frame is read and checked first; a bad one is answered with a
//! JSON-RPC error (-32700 parse error, -32600 invalid request) and dropped, and oversized
//! frames are discarded unread. The server's own output is copied frame by frame so the error
//! replies never interleave with it.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;
use tower_lsp_server::Server;
use tower_lsp_server::jsonrpc::{Request, Response};

/// Frames larger than this are refused (a whole large file in `didOpen` is far below it).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Serves LSP on `input`/`output` through the guard until the client exits or input ends.
pub async fn serve<I, O>(input: I, output: O)
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin + Send + 'static,
{
    let (service, socket) = super::service();
    let (mut to_server, server_input) = tokio::io::duplex(1 << 20);
    let (server_output, from_server) = tokio::io::duplex(1 << 20);
    let output = Arc::new(Mutex::new(output));

    let copy_output = {
        let output = Arc::clone(&output);
        tokio::spawn(async move {
            let mut reader = BufReader::new(from_server);
            while let Ok(Some(frame)) = read_frame(&mut reader).await {
                if let Frame::Body(body) = frame
                    && write_frame(&output, &body).await.is_err()
                {
                    return;
                }
            }
        })
    };

    let guard_input = {
        let output = Arc::clone(&output);
        tokio::spawn(async move {
            let mut reader = BufReader::new(input);
            loop {
                let frame = match read_frame(&mut reader).await {
                    Ok(Some(frame)) => frame,
                    Ok(None) | Err(_) => break,
                };
                match frame {
                    Frame::Body(body) => match check(&body) {
                        Ok(body) => {
                            let header = format!("Content-Length: {}\r\n\r\n", body.len());
                            if to_server.write_all(header.as_bytes()).await.is_err()
                                || to_server.write_all(&body).await.is_err()
                            {
                                break;
                            }
                        }
                        Err(reply) => {
                            tracing::warn!(
                                "rejected a malformed message: {}",
                                reply["error"]["message"]
                            );
                            let _ = write_frame(&output, reply.to_string().as_bytes()).await;
                        }
                    },
                    Frame::TooLarge(len) => {
                        let reply = error_reply(
                            Value::Null,
                            -32600,
                            format!(
                                "message of {len} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit"
                            ),
                        );
                        let _ = write_frame(&output, reply.to_string().as_bytes()).await;
                    }
                }
            }
            // Input ended: let the server see the end too.
            let _ = to_server.shutdown().await;
        })
    };

    Server::new(server_input, server_output, socket)
        .serve(service)
        .await;
    guard_input.abort();
    let _ = copy_output.await;
}

enum Frame {
    Body(Vec<u8>),
    TooLarge(usize),
}

/// Reads one `Content-Length` framed message; `Ok(None)` at the end of input.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> std::io::Result<Option<Frame>> {
    let mut length: Option<usize> = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if length.is_some() {
                break;
            }
            // Stray blank line between messages.
            continue;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok();
        }
    }
    let length = length.unwrap_or(0);
    if length > MAX_MESSAGE_BYTES {
        // Discard the body without holding it in memory.
        let mut left = length as u64;
        let mut sink = tokio::io::sink();
        left -= tokio::io::copy(&mut reader.take(left), &mut sink).await?;
        if left > 0 {
            return Ok(None);
        }
        return Ok(Some(Frame::TooLarge(length)));
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await?;
    Ok(Some(Frame::Body(body)))
}

async fn write_frame<O: AsyncWrite + Unpin>(output: &Mutex<O>, body: &[u8]) -> std::io::Result<()> {
    let mut out = output.lock().await;
    out.write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes())
        .await?;
    out.write_all(body).await?;
    out.flush().await
}

fn error_reply(id: Value, code: i64, message: String) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// Accepts exactly what tower-lsp can decode; otherwise returns the error reply to send.
fn check(body: &[u8]) -> Result<Vec<u8>, Value> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| error_reply(Value::Null, -32700, format!("parse error: {e}")))?;
    let id = match value.get("id") {
        Some(id @ (Value::Number(_) | Value::String(_))) => id.clone(),
        _ => Value::Null,
    };
    // What goes on is the message as we read it, written out again: a key given twice (which
    // `Value` resolves, last one wins) would otherwise fail the server's own decoding.
    let canonical = serde_json::to_vec(&value)
        .map_err(|e| error_reply(id.clone(), -32700, format!("parse error: {e}")))?;
    let fits = if value.get("method").is_some() {
        serde_json::from_value::<Request>(value).is_ok()
    } else {
        serde_json::from_value::<Response>(value).is_ok()
    };
    if fits {
        Ok(canonical)
    } else {
        Err(error_reply(
            id,
            -32600,
            "invalid request: not a JSON-RPC 2.0 request, notification or response".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_decodable_messages_pass() {
        assert!(check(br#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#).is_ok());
        assert!(check(br#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#).is_ok());
        assert!(check(br#"{"jsonrpc":"2.0","id":3,"result":null}"#).is_ok());
        let parse = check(b"{ not json").unwrap_err();
        assert_eq!(parse["error"]["code"], -32700);
        assert!(parse["id"].is_null());
        let shape = check(br#"{"jsonrpc":"2.0","id":7,"method":42}"#).unwrap_err();
        assert_eq!(shape["error"]["code"], -32600);
        assert_eq!(shape["id"], 7);
        assert!(check(br#"[1,2,3]"#).is_err());
    }

    /// Found by `scripts/fuzz` (target jsonrpc): a request with `id` and `method` given twice
    /// passed the check but failed the server's decoding, which then stopped reading.
    #[test]
    fn regression_duplicate_keys_are_resolved_before_the_server_sees_them() {
        let body = br#"{"jsonrpc":"2.0","id":2,"method":"x","id":3,"method":"shutdown"}"#;
        assert!(
            serde_json::from_slice::<Request>(body).is_err(),
            "the server's own decoding"
        );
        let forwarded: Value = serde_json::from_slice(&check(body).unwrap()).unwrap();
        assert_eq!(forwarded["id"], 3);
        assert_eq!(forwarded["method"], "shutdown");
        let decoded: std::result::Result<Request, _> =
            serde_json::from_slice(&check(body).unwrap());
        assert!(decoded.is_ok(), "the forwarded bytes decode as a request");
    }

    #[tokio::test]
    async fn frames_are_read_and_oversized_ones_skipped() {
        let big = MAX_MESSAGE_BYTES + 10;
        let mut input = Vec::new();
        input.extend_from_slice(b"Content-Length: 2\r\n\r\n{}");
        input.extend_from_slice(format!("Content-Length: {big}\r\n\r\n").as_bytes());
        input.extend(std::iter::repeat_n(b'x', big));
        input.extend_from_slice(b"\r\nContent-Length: 4\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\nnull");
        let mut reader = BufReader::new(&input[..]);
        assert!(
            matches!(read_frame(&mut reader).await.unwrap(), Some(Frame::Body(b)) if b == b"{}")
        );
        assert!(
            matches!(read_frame(&mut reader).await.unwrap(), Some(Frame::TooLarge(n)) if n == big)
        );
        assert!(
            matches!(read_frame(&mut reader).await.unwrap(), Some(Frame::Body(b)) if b == b"null")
        );
        assert!(read_frame(&mut reader).await.unwrap().is_none());
    }
}
