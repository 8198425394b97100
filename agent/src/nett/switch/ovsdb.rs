//! A small OVSDB client (RFC 7047): JSON-RPC 1.0 over a unix socket or TCP.
//!
//! It speaks the subset the Open vSwitch driver needs: `list_dbs`,
//! `get_schema`, `transact` (with `select`, `insert`, `update`, `mutate`,
//! `delete`, `wait`) and `echo`, both ways: the server may probe an idle
//! client with `echo`, and the client answers while it waits for a reply.
//!
//! OVSDB frames nothing: messages are JSON objects sent back to back, so the
//! reader feeds its buffer to serde_json's `StreamDeserializer` and keeps
//! what is not a complete object yet. [`parse_frame`] is that step as a pure
//! function over bytes, so it can be fuzzed and property-tested: whatever
//! the peer sends, it returns a message, "need more bytes" or an error, and
//! never panics. Reads are bounded in size ([`MAX_MESSAGE`]) and in time
//! (the timeout given at connect). Why a client of our own and not a crate:
//! docs/adr/0014-switch-drivers.md.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest message accepted from the server. A `select` of every port
/// on a big switch is far below this; anything larger is a broken peer.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// How much one read asks for.
const READ_CHUNK: usize = 64 * 1024;

/// Why an OVSDB exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OvsdbError {
    /// The socket could not be opened.
    #[error("cannot connect to OVSDB at {target}")]
    Connect {
        /// The socket path or address.
        target: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing the socket failed.
    #[error("OVSDB connection failed")]
    Io(#[from] std::io::Error),
    /// The server closed the connection while a reply was awaited.
    #[error("OVSDB server closed the connection")]
    Closed,
    /// No reply within the client's timeout.
    #[error("OVSDB server did not answer {method} within {timeout:?}")]
    Timeout {
        /// The request's method.
        method: String,
        /// The limit.
        timeout: Duration,
    },
    /// The server sent more than [`MAX_MESSAGE`] bytes without completing a
    /// message.
    #[error("OVSDB message exceeds {MAX_MESSAGE} bytes")]
    TooLarge,
    /// The server sent something that is not an OVSDB message.
    #[error("malformed OVSDB message: {0}")]
    Malformed(String),
    /// The server answered the request with a JSON-RPC error.
    #[error("OVSDB {method} failed: {error}")]
    Rpc {
        /// The request's method.
        method: String,
        /// The error object as sent.
        error: Value,
    },
    /// One operation of a transaction failed; the whole transaction was
    /// rolled back by the server.
    #[error("OVSDB transaction failed at operation {index}: {error}{}", details_suffix(.details))]
    Operation {
        /// The failed operation's position (the operation count for a
        /// failure at commit, such as a referential integrity violation).
        index: usize,
        /// The error's name (`constraint violation`, `timed out`).
        error: String,
        /// The server's explanation.
        details: Option<String>,
    },
}

fn details_suffix(details: &Option<String>) -> String {
    details
        .as_ref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default()
}

/// A message from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// The answer to one of our requests.
    Reply {
        /// The id of the request it answers.
        id: Value,
        /// The result, `null` on error.
        result: Value,
        /// The error, `null` on success.
        error: Value,
    },
    /// A request or notification from the server (`echo`, `update`); a
    /// notification's id is `null`.
    Request {
        /// The method.
        method: String,
        /// Its parameters.
        params: Value,
        /// Its id.
        id: Value,
    },
}

/// Parses the first complete message in `buf`: `Ok(Some((message, used)))`
/// with the number of bytes it took, `Ok(None)` when `buf` holds only the
/// start of one (or only whitespace), or an error for bytes that can never
/// become an OVSDB message.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(Incoming, usize)>, OvsdbError> {
    let mut stream = serde_json::Deserializer::from_slice(buf).into_iter::<Value>();
    let value = match stream.next() {
        None => return Ok(None),
        Some(Err(e)) if e.is_eof() => return Ok(None),
        Some(Err(e)) => return Err(OvsdbError::Malformed(e.to_string())),
        Some(Ok(v)) => v,
    };
    let used = stream.byte_offset();
    let Value::Object(mut obj) = value else {
        return Err(OvsdbError::Malformed(
            "expected a JSON object (a JSON-RPC message)".to_owned(),
        ));
    };
    let id = obj.remove("id").unwrap_or(Value::Null);
    if let Some(method) = obj.remove("method") {
        let Value::String(method) = method else {
            return Err(OvsdbError::Malformed("method is not a string".to_owned()));
        };
        let params = obj.remove("params").unwrap_or(Value::Null);
        return Ok(Some((Incoming::Request { method, params, id }, used)));
    }
    if !obj.contains_key("result") && !obj.contains_key("error") {
        return Err(OvsdbError::Malformed(
            "message has neither method nor result nor error".to_owned(),
        ));
    }
    let result = obj.remove("result").unwrap_or(Value::Null);
    let error = obj.remove("error").unwrap_or(Value::Null);
    Ok(Some((Incoming::Reply { id, result, error }, used)))
}

/// `[column, function, value]`: one condition of a `where` clause.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Condition(pub String, pub String, pub Value);

impl Condition {
    /// `column == value`.
    pub fn eq(column: &str, value: impl Into<Value>) -> Condition {
        Condition(column.to_owned(), "==".to_owned(), value.into())
    }
}

/// `[column, mutator, value]`: one mutation of a `mutate` operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mutation(pub String, pub String, pub Value);

/// One operation of a transaction (RFC 7047 section 5.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    /// Reads the rows that match.
    Select {
        /// The table.
        table: String,
        /// The conditions, all of which must hold.
        #[serde(rename = "where")]
        conditions: Vec<Condition>,
        /// The columns to return; all when `None`.
        #[serde(skip_serializing_if = "Option::is_none")]
        columns: Option<Vec<String>>,
    },
    /// Inserts a row; `uuid_name` lets later operations refer to it.
    Insert {
        /// The table.
        table: String,
        /// The row's columns.
        row: Map<String, Value>,
        /// The name later operations use (`["named-uuid", name]`).
        #[serde(rename = "uuid-name", skip_serializing_if = "Option::is_none")]
        uuid_name: Option<String>,
    },
    /// Sets columns of the rows that match.
    Update {
        /// The table.
        table: String,
        /// The conditions.
        #[serde(rename = "where")]
        conditions: Vec<Condition>,
        /// The columns to set.
        row: Map<String, Value>,
    },
    /// Mutates columns of the rows that match (`+=`, `insert`, `delete`).
    Mutate {
        /// The table.
        table: String,
        /// The conditions.
        #[serde(rename = "where")]
        conditions: Vec<Condition>,
        /// The mutations.
        mutations: Vec<Mutation>,
    },
    /// Deletes the rows that match.
    Delete {
        /// The table.
        table: String,
        /// The conditions.
        #[serde(rename = "where")]
        conditions: Vec<Condition>,
    },
    /// Fails the transaction unless the rows that match, projected to
    /// `columns`, equal (`until: "=="`) or differ from (`"!="`) `rows`.
    /// With `timeout: 0` it is a precondition checked atomically.
    Wait {
        /// The table.
        table: String,
        /// The conditions.
        #[serde(rename = "where")]
        conditions: Vec<Condition>,
        /// The columns compared.
        columns: Vec<String>,
        /// `==` or `!=`.
        until: String,
        /// The expected rows.
        rows: Vec<Map<String, Value>>,
        /// How long the server may wait, in milliseconds.
        #[serde(skip_serializing_if = "Option::is_none")]
        timeout: Option<u64>,
    },
}

/// The result of one successful operation.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct OpResult {
    /// Rows matched (`update`, `mutate`, `delete`).
    #[serde(default)]
    pub count: Option<u64>,
    /// The new row's id (`insert`): `["uuid", "..."]`.
    #[serde(default)]
    pub uuid: Option<Value>,
    /// The rows (`select`).
    #[serde(default)]
    pub rows: Option<Vec<Map<String, Value>>>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    details: Option<String>,
}

/// Checks a `transact` result array: one result per operation, an error
/// object in place of the one that failed (and possibly one more after the
/// last operation for a commit failure).
pub fn transact_results(ops: usize, result: Value) -> Result<Vec<OpResult>, OvsdbError> {
    let Value::Array(items) = result else {
        return Err(OvsdbError::Malformed(
            "transact result is not an array".to_owned(),
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        // Operations after a failed one answer null.
        if item.is_null() {
            out.push(OpResult::default());
            continue;
        }
        let r: OpResult = serde_json::from_value(item)
            .map_err(|e| OvsdbError::Malformed(format!("transact result {index}: {e}")))?;
        if let Some(error) = r.error {
            return Err(OvsdbError::Operation {
                index,
                error,
                details: r.details,
            });
        }
        out.push(r);
    }
    if out.len() < ops {
        return Err(OvsdbError::Malformed(format!(
            "transact answered {} results for {ops} operations",
            out.len()
        )));
    }
    out.truncate(ops);
    Ok(out)
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Io for T {}

/// A connection to one OVSDB server; one request at a time.
#[derive(Debug)]
pub struct OvsdbClient {
    io: Box<dyn Io>,
    buf: Vec<u8>,
    next_id: u64,
    timeout: Duration,
}

#[derive(Serialize)]
struct Request<'a> {
    method: &'a str,
    params: &'a Value,
    id: Value,
}

impl OvsdbClient {
    /// Connects to a unix socket (`ovsdb-server --remote=punix:PATH`).
    /// Every request must be answered within `timeout`.
    pub async fn connect_unix(path: &Path, timeout: Duration) -> Result<Self, OvsdbError> {
        let stream = tokio::time::timeout(timeout, tokio::net::UnixStream::connect(path))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))
            .and_then(|r| r)
            .map_err(|source| OvsdbError::Connect {
                target: path.display().to_string(),
                source,
            })?;
        Ok(Self::over(Box::new(stream), timeout))
    }

    /// Connects over TCP (`ovsdb-server --remote=ptcp:PORT`).
    pub async fn connect_tcp(addr: &str, timeout: Duration) -> Result<Self, OvsdbError> {
        let stream = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))
            .and_then(|r| r)
            .map_err(|source| OvsdbError::Connect {
                target: addr.to_owned(),
                source,
            })?;
        Ok(Self::over(Box::new(stream), timeout))
    }

    fn over(io: Box<dyn Io>, timeout: Duration) -> Self {
        Self {
            io,
            buf: Vec::new(),
            next_id: 1,
            timeout,
        }
    }

    /// The databases the server holds.
    pub async fn list_dbs(&mut self) -> Result<Vec<String>, OvsdbError> {
        let result = self.call("list_dbs", json!([])).await?;
        serde_json::from_value(result)
            .map_err(|e| OvsdbError::Malformed(format!("list_dbs result: {e}")))
    }

    /// The schema of `db`, as the server sends it.
    pub async fn get_schema(&mut self, db: &str) -> Result<Value, OvsdbError> {
        self.call("get_schema", json!([db])).await
    }

    /// Sends `echo` and checks the server returns the same parameters.
    pub async fn echo(&mut self) -> Result<(), OvsdbError> {
        let params = json!(["dataverket"]);
        let result = self.call("echo", params.clone()).await?;
        if result == params {
            Ok(())
        } else {
            Err(OvsdbError::Malformed(format!(
                "echo returned {result} for {params}"
            )))
        }
    }

    /// Runs `ops` as one transaction on `db`: all of them take effect or
    /// none. Returns one result per operation.
    pub async fn transact(&mut self, db: &str, ops: &[Op]) -> Result<Vec<OpResult>, OvsdbError> {
        let mut params = vec![Value::String(db.to_owned())];
        for op in ops {
            params.push(
                serde_json::to_value(op)
                    .map_err(|e| OvsdbError::Malformed(format!("cannot encode operation: {e}")))?,
            );
        }
        tracing::debug!(db, ops = ops.len(), "ovsdb transact");
        let result = self.call("transact", Value::Array(params)).await?;
        transact_results(ops.len(), result)
    }

    /// Sends one request and waits for its reply, answering the server's
    /// echo probes meanwhile.
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, OvsdbError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = Request {
            method,
            params: &params,
            id: Value::from(id),
        };
        let bytes = serde_json::to_vec(&request)
            .map_err(|e| OvsdbError::Malformed(format!("cannot encode request: {e}")))?;
        let timeout = self.timeout;
        tokio::time::timeout(timeout, async {
            self.io.write_all(&bytes).await?;
            self.io.flush().await?;
            loop {
                match self.next_message().await? {
                    Incoming::Reply {
                        id: rid,
                        result,
                        error,
                    } if rid == id => {
                        if !error.is_null() {
                            return Err(OvsdbError::Rpc {
                                method: method.to_owned(),
                                error,
                            });
                        }
                        return Ok(result);
                    }
                    Incoming::Reply { id: rid, .. } => {
                        tracing::debug!(%rid, "ovsdb reply to no pending request ignored");
                    }
                    Incoming::Request {
                        method: m,
                        params: p,
                        id: rid,
                    } if m == "echo" && !rid.is_null() => {
                        let answer = json!({"result": p, "error": null, "id": rid});
                        let answer = serde_json::to_vec(&answer).map_err(|e| {
                            OvsdbError::Malformed(format!("cannot encode echo reply: {e}"))
                        })?;
                        self.io.write_all(&answer).await?;
                        self.io.flush().await?;
                    }
                    Incoming::Request { method: m, .. } => {
                        tracing::debug!(method = %m, "ovsdb notification ignored");
                    }
                }
            }
        })
        .await
        .map_err(|_| OvsdbError::Timeout {
            method: method.to_owned(),
            timeout,
        })?
    }

    /// Reads until the buffer holds a whole message, and takes it.
    async fn next_message(&mut self) -> Result<Incoming, OvsdbError> {
        loop {
            if let Some((msg, used)) = parse_frame(&self.buf)? {
                self.buf.drain(..used);
                return Ok(msg);
            }
            if self.buf.len() > MAX_MESSAGE {
                return Err(OvsdbError::TooLarge);
            }
            // Read straight into the buffer's spare room: a buffer inside
            // the future would sit on the stack, and every reparse is of
            // the whole buffer, so read in large pieces.
            self.buf.reserve(READ_CHUNK);
            let n = self.io.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Err(OvsdbError::Closed);
            }
        }
    }
}

/// Reads an OVSDB integer set: a bare atom, or `["set", [atoms]]`.
pub fn int_set(value: &Value) -> Result<Vec<i64>, OvsdbError> {
    let bad = || OvsdbError::Malformed(format!("expected an integer set, got {value}"));
    match value {
        Value::Number(n) => Ok(vec![n.as_i64().ok_or_else(bad)?]),
        Value::Array(a) if a.len() == 2 && a[0] == "set" => {
            let Value::Array(items) = &a[1] else {
                return Err(bad());
            };
            items
                .iter()
                .map(|i| i.as_i64().ok_or_else(bad))
                .collect::<Result<_, _>>()
        }
        _ => Err(bad()),
    }
}

/// Reads an optional string (a set of at most one string).
pub fn opt_string(value: &Value) -> Result<Option<String>, OvsdbError> {
    let bad = || OvsdbError::Malformed(format!("expected an optional string, got {value}"));
    match value {
        Value::String(s) => Ok(Some(s.clone())),
        Value::Array(a) if a.len() == 2 && a[0] == "set" => match &a[1] {
            Value::Array(items) if items.is_empty() => Ok(None),
            Value::Array(items) if items.len() == 1 => items[0]
                .as_str()
                .map(|s| Some(s.to_owned()))
                .ok_or_else(bad),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// Reads a row id, `["uuid", "..."]`.
pub fn uuid(value: &Value) -> Result<String, OvsdbError> {
    match value {
        Value::Array(a) if a.len() == 2 && a[0] == "uuid" => a[1]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| OvsdbError::Malformed(format!("bad uuid {value}"))),
        _ => Err(OvsdbError::Malformed(format!(
            "expected [\"uuid\", ...], got {value}"
        ))),
    }
}

/// Reads a set of row ids: one `["uuid", ..]`, or `["set", [[..], ..]]`.
pub fn uuid_set(value: &Value) -> Result<Vec<String>, OvsdbError> {
    match value {
        Value::Array(a) if a.len() == 2 && a[0] == "set" => match &a[1] {
            Value::Array(items) => items.iter().map(uuid).collect(),
            _ => Err(OvsdbError::Malformed(format!("bad uuid set {value}"))),
        },
        other => Ok(vec![uuid(other)?]),
    }
}

/// An OVSDB set of integers as a value to write.
pub fn int_set_value(items: impl IntoIterator<Item = i64>) -> Value {
    let items: Vec<Value> = items.into_iter().map(Value::from).collect();
    json!(["set", items])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_are_split_back_to_back() {
        let two = br#"{"id":1,"result":["Open_vSwitch"],"error":null}{"method":"echo","params":[],"id":"echo"}"#;
        let (first, used) = parse_frame(two).unwrap().unwrap();
        assert_eq!(
            first,
            Incoming::Reply {
                id: json!(1),
                result: json!(["Open_vSwitch"]),
                error: Value::Null
            }
        );
        let (second, rest) = parse_frame(&two[used..]).unwrap().unwrap();
        assert!(matches!(second, Incoming::Request { ref method, .. } if method == "echo"));
        assert_eq!(used + rest, two.len());
    }

    #[test]
    fn a_partial_message_needs_more_bytes() {
        assert!(parse_frame(br#"{"id":1,"res"#).unwrap().is_none());
        assert!(parse_frame(b"  \n").unwrap().is_none());
        assert!(parse_frame(b"").unwrap().is_none());
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(matches!(
            parse_frame(b"[1,2]"),
            Err(OvsdbError::Malformed(_))
        ));
        assert!(matches!(parse_frame(b"}{"), Err(OvsdbError::Malformed(_))));
        assert!(matches!(
            parse_frame(br#"{"id":1}"#),
            Err(OvsdbError::Malformed(_))
        ));
        assert!(matches!(
            parse_frame(br#"{"method":7}"#),
            Err(OvsdbError::Malformed(_))
        ));
    }

    #[test]
    fn operations_encode_as_rfc_7047() {
        let op = Op::Wait {
            table: "Port".into(),
            conditions: vec![Condition::eq("name", "h1p")],
            columns: vec!["name".into()],
            until: "==".into(),
            rows: vec![json!({"name": "h1p"}).as_object().unwrap().clone()],
            timeout: Some(0),
        };
        assert_eq!(
            serde_json::to_value(&op).unwrap(),
            json!({"op": "wait", "table": "Port", "where": [["name", "==", "h1p"]],
                   "columns": ["name"], "until": "==", "rows": [{"name": "h1p"}], "timeout": 0})
        );
        let op = Op::Insert {
            table: "Port".into(),
            row: Map::new(),
            uuid_name: Some("p".into()),
        };
        assert_eq!(
            serde_json::to_value(&op).unwrap(),
            json!({"op": "insert", "table": "Port", "row": {}, "uuid-name": "p"})
        );
    }

    #[test]
    fn a_failed_operation_is_reported_with_its_index_and_details() {
        let reply = json!([{"count": 0}, {"uuid": ["uuid", "x"]},
            {"error": "referential integrity violation", "details": "Port ... Interface"}]);
        let e = transact_results(2, reply).unwrap_err();
        assert!(
            matches!(e, OvsdbError::Operation { index: 2, ref error, .. } if error == "referential integrity violation"),
            "{e}"
        );
        let ok = transact_results(1, json!([{"rows": []}])).unwrap();
        assert_eq!(ok[0].rows, Some(vec![]));
        assert!(transact_results(2, json!([{"rows": []}])).is_err());
        assert!(transact_results(1, json!({"rows": []})).is_err());
    }

    #[test]
    fn datum_readers() {
        assert_eq!(int_set(&json!(10)).unwrap(), [10]);
        assert_eq!(int_set(&json!(["set", [10, 20]])).unwrap(), [10, 20]);
        assert!(int_set(&json!(["map", []])).is_err());
        assert_eq!(opt_string(&json!(["set", []])).unwrap(), None);
        assert_eq!(
            opt_string(&json!("access")).unwrap(),
            Some("access".to_owned())
        );
        assert_eq!(uuid_set(&json!(["uuid", "a"])).unwrap(), ["a"]);
        assert_eq!(
            uuid_set(&json!(["set", [["uuid", "a"], ["uuid", "b"]]])).unwrap(),
            ["a", "b"]
        );
        assert!(uuid(&json!(["named-uuid", "a"])).is_err());
    }

    /// A peer that probes with `echo` before answering, and sends its
    /// answer in two pieces: the client answers the probe, reassembles the
    /// reply and matches it to its request.
    #[tokio::test]
    async fn echo_probes_are_answered_and_split_replies_reassembled() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (ours, mut peer) = tokio::net::UnixStream::pair().unwrap();
        let mut client = OvsdbClient::over(Box::new(ours), Duration::from_secs(5));
        let server = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let n = peer.read(&mut buf).await.unwrap();
            let (req, _) = parse_frame(&buf[..n]).unwrap().unwrap();
            let Incoming::Request { method, id, .. } = req else {
                panic!("expected a request, got {req:?}");
            };
            assert_eq!(method, "list_dbs");
            peer.write_all(br#"{"method":"echo","params":["probe"],"id":"echo"}"#)
                .await
                .unwrap();
            let n = peer.read(&mut buf).await.unwrap();
            let (answer, _) = parse_frame(&buf[..n]).unwrap().unwrap();
            assert_eq!(
                answer,
                Incoming::Reply {
                    id: json!("echo"),
                    result: json!(["probe"]),
                    error: Value::Null
                }
            );
            let reply = format!(r#"{{"id":{id},"result":["Open_vSwitch"],"error":null}}"#);
            let (a, b) = reply.as_bytes().split_at(10);
            peer.write_all(a).await.unwrap();
            peer.flush().await.unwrap();
            tokio::task::yield_now().await;
            peer.write_all(b).await.unwrap();
            // Then hang up: the next request sees a closed connection.
            drop(peer);
        });
        assert_eq!(client.list_dbs().await.unwrap(), ["Open_vSwitch"]);
        server.await.unwrap();
        assert!(matches!(
            client.list_dbs().await,
            Err(OvsdbError::Closed | OvsdbError::Io(_))
        ));
    }

    #[tokio::test]
    async fn an_error_reply_and_a_silent_server_are_clear_errors() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (ours, mut peer) = tokio::net::UnixStream::pair().unwrap();
        let mut client = OvsdbClient::over(Box::new(ours), Duration::from_millis(300));
        let server = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let _ = peer.read(&mut buf).await.unwrap();
            peer.write_all(br#"{"id":1,"result":null,"error":"unknown database"}"#)
                .await
                .unwrap();
            // Read the second request and never answer it.
            let _ = peer.read(&mut buf).await.unwrap();
            peer
        });
        let e = client.transact("Nope", &[]).await.unwrap_err();
        assert!(e.to_string().contains("unknown database"), "{e}");
        let e = client.echo().await.unwrap_err();
        assert!(matches!(e, OvsdbError::Timeout { .. }), "{e}");
        drop(server.await.unwrap());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(Some((_, used))) = parse_frame(&bytes) {
                prop_assert!(used <= bytes.len());
            }
        }

        #[test]
        fn arbitrary_json_never_panics(s in r#"[\[\]{}",:0-9a-z \\]{0,200}"#) {
            let _ = parse_frame(s.as_bytes());
            if let Ok(v) = serde_json::from_str::<Value>(&s) {
                let _ = transact_results(2, v.clone());
                let _ = int_set(&v);
                let _ = opt_string(&v);
                let _ = uuid_set(&v);
            }
        }
    }
}
