//! Queries written by a language model: for each function, an OpenAI-compatible chat-completions
//! endpoint (a local server: llama.cpp, vLLM, Ollama, …) is asked for the search a developer
//! would type to find it, as CodeR synthesises its training queries.
//!
//! Optional and never required: without `--generator` nothing here runs, and an endpoint that
//! fails stops this source with a note in the report, never the run. Plain `http://` only, over
//! a minimal HTTP/1.1 client: the endpoint is meant to run on this machine or this network.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::Candidate;
use super::repo::{Repo, is_callable, is_definition};
use crate::train::pairs::{PairSource, TaskFamily};

/// How long one completion may take (a small local model on a CPU is slow).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest query kept; a model that rambles is cut at the first line anyway.
const MAX_QUERY_CHARS: usize = 300;

const SYSTEM_PROMPT: &str = "You write code search queries. Given a piece of code, reply with one \
short query, in plain English, that a developer who has never seen this code would type to find \
it. Do not name the function. Reply with the query only.";

/// Where the queries come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorOptions {
    /// The endpoint: `http://host:port/v1/chat/completions`, or a base such as
    /// `http://host:port/v1` (the path is completed).
    pub url: String,
    /// The `model` field of each request.
    pub model: String,
    /// Most functions a query is asked for (the first ones in path order).
    pub max_symbols: usize,
}

/// What the generator did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GeneratorReport {
    /// Queries received.
    pub queries: usize,
    /// Requests that failed (the source stops after the first).
    pub failed: usize,
    /// The first failure, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Asks the endpoint for one query per callable definition, up to `max_symbols`.
pub(crate) fn mine(
    repo: &Repo,
    options: &GeneratorOptions,
    out: &mut Vec<Candidate>,
) -> GeneratorReport {
    let mut report = GeneratorReport::default();
    let endpoint = match Endpoint::parse(&options.url) {
        Ok(endpoint) => endpoint,
        Err(error) => {
            report.error = Some(error);
            return report;
        }
    };
    let targets = repo
        .symbols()
        .filter(|(_, _, m)| is_definition(m) && is_callable(m.symbol.kind))
        .take(options.max_symbols);
    for (target, _, mined) in targets {
        let body = serde_json::json!({
            "model": options.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": mined.chunk},
            ],
        });
        match endpoint.post(&body).and_then(|answer| query_of(&answer)) {
            Ok(query) => {
                report.queries += 1;
                out.push(Candidate::to_chunk(
                    repo,
                    target,
                    TaskFamily::Text2Code,
                    PairSource::Generator,
                    &query,
                ));
            }
            Err(error) => {
                tracing::warn!("query generator: {error}; no more queries are asked for");
                report.failed += 1;
                report.error = Some(error);
                break;
            }
        }
    }
    report
}

/// The query in a chat-completions answer: the first non-empty line of the first choice, without
/// quotes or a list marker.
fn query_of(answer: &serde_json::Value) -> Result<String, String> {
    let content = answer["choices"][0]["message"]["content"]
        .as_str()
        .ok_or_else(|| format!("the answer has no choices[0].message.content: {answer}"))?;
    let line = content
        .lines()
        .map(|l| l.trim().trim_start_matches(['-', '*']).trim())
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .trim_matches(['"', '\'', '`']);
    let query: String = line.chars().take(MAX_QUERY_CHARS).collect();
    if query.is_empty() {
        return Err("the answer's content is empty".into());
    }
    Ok(query)
}

/// An `http://host:port/path` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    host: String,
    port: u16,
    path: String,
}

impl Endpoint {
    fn parse(url: &str) -> Result<Self, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("generator URL {url:?}: only http:// endpoints (a local server) are supported")
        })?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .map_err(|_| format!("generator URL {url:?}: bad port {port:?}"))?,
            ),
            None => (authority, 80),
        };
        if host.is_empty() {
            return Err(format!("generator URL {url:?}: no host"));
        }
        let path = path.trim_end_matches('/');
        let path = if path.ends_with("chat/completions") {
            format!("/{path}")
        } else if path.is_empty() {
            "/v1/chat/completions".to_string()
        } else {
            format!("/{path}/chat/completions")
        };
        Ok(Self {
            host: host.to_string(),
            port,
            path,
        })
    }

    /// POSTs `body` as JSON and parses the JSON answer.
    fn post(&self, body: &serde_json::Value) -> Result<serde_json::Value, String> {
        let failed = |e: std::io::Error| format!("http://{}:{}: {e}", self.host, self.port);
        let address = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(failed)?
            .next()
            .ok_or_else(|| format!("{}: no address", self.host))?;
        let mut stream =
            TcpStream::connect_timeout(&address, Duration::from_secs(10)).map_err(failed)?;
        stream
            .set_read_timeout(Some(REQUEST_TIMEOUT))
            .map_err(failed)?;
        stream
            .set_write_timeout(Some(REQUEST_TIMEOUT))
            .map_err(failed)?;
        let body = body.to_string();
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\n\
             Accept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.path,
            self.host,
            self.port,
            body.len()
        );
        stream.write_all(request.as_bytes()).map_err(failed)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).map_err(failed)?;
        let (status, payload) = parse_response(&response)?;
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&payload);
            return Err(format!(
                "{} answered HTTP {status}: {}",
                self.path,
                text.chars().take(200).collect::<String>()
            ));
        }
        serde_json::from_slice(&payload).map_err(|e| format!("the answer is not JSON: {e}"))
    }
}

/// The status code and body of a whole HTTP/1.1 response (chunked or not).
fn parse_response(response: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer has no HTTP header")?;
    let head = String::from_utf8_lossy(&response[..split]);
    let body = &response[split + 4..];
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or("the answer has no HTTP status line")?;
    let chunked = head.lines().any(|line| {
        let lower = line.to_ascii_lowercase();
        lower.starts_with("transfer-encoding:") && lower.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunked answer ends early")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or("a chunked answer ends early")?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).ok_or("a chunked answer ends early")?;
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    use super::*;

    /// A fake chat-completions server: answers each request with a query naming the function
    /// it was shown (chunked on odd requests), and sends back the requests it saw.
    fn fake_server(requests: usize) -> (String, std::thread::JoinHandle<Vec<serde_json::Value>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for i in 0..requests {
                let (stream, _) = listener.accept().unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                assert_eq!(request_line, "POST /v1/chat/completions HTTP/1.1\r\n");
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let chunk = request["messages"][1]["content"]
                    .as_str()
                    .unwrap()
                    .to_string();
                let name = chunk.split_whitespace().nth(1).unwrap().to_string();
                seen.push(request);
                let answer = serde_json::json!({
                    "choices": [{"message": {"role": "assistant",
                        "content": format!("\"how does {name} work\"\nextra line")}}]
                })
                .to_string();
                let mut stream = stream;
                let response = if i % 2 == 0 {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                        answer.len()
                    )
                } else {
                    let (a, b) = answer.split_at(answer.len() / 2);
                    format!(
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                        a.len(),
                        b.len()
                    )
                };
                stream.write_all(response.as_bytes()).unwrap();
            }
            seen
        });
        (url, handle)
    }

    #[test]
    fn queries_come_from_the_endpoint_for_each_function() {
        let dir = tempfile::tempdir().unwrap();
        super::super::tests::fixture(dir.path(), false);
        let (url, server) = fake_server(3);
        let mut options = super::super::MineOptions::new(super::super::tests::chunker());
        options.generator = Some(GeneratorOptions {
            url,
            model: "tiny".into(),
            max_symbols: 3,
        });
        let mined = super::super::mine_repository(dir.path(), &options).unwrap();
        let seen = server.join().unwrap();
        assert_eq!(seen.len(), 3);
        assert!(seen.iter().all(|r| r["model"] == "tiny"));
        let generated: Vec<(&str, &str)> = mined
            .pairs
            .iter()
            .filter(|p| p.source == PairSource::Generator)
            .map(|p| (p.query.as_str(), p.symbol.as_str()))
            .collect();
        assert_eq!(generated.len(), 3, "{generated:?}");
        for (query, symbol) in &generated {
            assert_eq!(*query, format!("how does {symbol} work"));
        }
        assert_eq!(mined.stats.generator.as_ref().map(|g| g.queries), Some(3));
    }

    #[test]
    fn an_endpoint_that_is_down_stops_the_source_not_the_run() {
        let dir = tempfile::tempdir().unwrap();
        super::super::tests::fixture(dir.path(), false);
        // A port nothing listens on: bind, note it, close.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut options = super::super::MineOptions::new(super::super::tests::chunker());
        options.generator = Some(GeneratorOptions {
            url: format!("http://127.0.0.1:{port}/v1/chat/completions"),
            model: "tiny".into(),
            max_symbols: 10,
        });
        let mined = super::super::mine_repository(dir.path(), &options).unwrap();
        let report = mined.stats.generator.unwrap();
        assert_eq!((report.queries, report.failed), (0, 1));
        assert!(report.error.is_some());
        assert!(!mined.pairs.is_empty());
    }

    #[test]
    fn urls_answers_and_chunked_bodies() {
        assert_eq!(
            Endpoint::parse("http://localhost:8080/v1").unwrap(),
            Endpoint {
                host: "localhost".into(),
                port: 8080,
                path: "/v1/chat/completions".into()
            }
        );
        assert_eq!(
            Endpoint::parse("http://h/x/chat/completions").unwrap().path,
            "/x/chat/completions"
        );
        assert_eq!(
            Endpoint::parse("http://h:1").unwrap().path,
            "/v1/chat/completions"
        );
        assert!(
            Endpoint::parse("https://h/v1")
                .unwrap_err()
                .contains("only http://")
        );
        assert!(Endpoint::parse("http://h:x/").is_err());
        let answer = serde_json::json!({"choices": [{"message": {"content": "\n- `find the config file`\n"}}]});
        assert_eq!(query_of(&answer).unwrap(), "find the config file");
        assert!(query_of(&serde_json::json!({"error": "x"})).is_err());
        assert_eq!(
            dechunk(b"3\r\nabc\r\n1;x=y\r\nd\r\n0\r\n\r\n").unwrap(),
            b"abcd"
        );
        assert!(dechunk(b"5\r\nab").is_err());
        let (status, body) = parse_response(b"HTTP/1.1 503 Busy\r\nA: b\r\n\r\nlater").unwrap();
        assert_eq!((status, body.as_slice()), (503, &b"later"[..]));
    }
}
