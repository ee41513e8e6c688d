//! Any bytes as one LSP message body, after a valid `initialize`: the server must answer the
//! `shutdown` that follows, i.e. no message can crash it or stop it from reading.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let (read, write) = tokio::io::split(server);
        tokio::spawn(coder_lsp::lsp::serve(read, write));
        let initialize = serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"processId": null, "capabilities": {},
                       "initializationOptions": {"model": "/nonexistent/model"}}
        });
        let shutdown = serde_json::json!({"jsonrpc": "2.0", "id": 424242, "method": "shutdown"});
        let mut input = frame(initialize.to_string().as_bytes());
        input.extend(frame(data));
        input.extend(frame(shutdown.to_string().as_bytes()));
        client.write_all(&input).await.expect("write");
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let needle = b"\"id\":424242";
        let answered = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            loop {
                let n = client.read(&mut buf).await.expect("read");
                if n == 0 {
                    // Only an `exit` notification may end the session.
                    assert!(
                        data.windows(4).any(|w| w == b"exit"),
                        "the server closed the connection"
                    );
                    return;
                }
                seen.extend_from_slice(&buf[..n]);
                if seen.windows(needle.len()).any(|w| w == needle) {
                    return;
                }
            }
        })
        .await;
        assert!(
            answered.is_ok(),
            "no answer to shutdown after {:?}",
            String::from_utf8_lossy(data)
        );
    });
});
