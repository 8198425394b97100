//! The SDK's one error type: every HTTP status the API documents has its
//! own variant carrying the server's `{"error": ...}` text, so a caller
//! (the `dv` CLI) decides what to say and which exit code to use by
//! matching, never by parsing messages.

use crate::ETag;

/// Why a call did not succeed.
///
/// The API variants' text is the server's own message, which says what went
/// wrong and what to do. Transport causes are reachable through
/// [`std::error::Error::source`], never repeated in the text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The base URL is not an absolute `http` or `https` URL.
    #[error("{url:?} is not an http:// or https:// URL")]
    InvalidUrl {
        /// What was given.
        url: String,
    },
    /// The CA certificate given to trust is not PEM.
    #[error("the CA certificate is not a PEM certificate")]
    InvalidCa {
        /// The parser's reason.
        #[source]
        source: reqwest::Error,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot set up the HTTP client")]
    Setup {
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// No answer: nothing listens, TLS failed, or the connection broke or
    /// timed out.
    #[error("no answer from {url}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport's reason.
        #[source]
        source: reqwest::Error,
    },
    /// A success answer whose body is not the type the API describes (the
    /// server speaks another version of the API, or is not a Dataverket
    /// server).
    #[error("the answer from {url} is not what the API describes")]
    Decode {
        /// The URL called.
        url: String,
        /// The JSON decoder's reason.
        #[source]
        source: serde_json::Error,
    },
    /// 404 without the API's error body: the server has no such endpoint
    /// (an agent asked a hub-only call, a hub an agent-only one, or an older
    /// server). A missing resource is [`Error::NotFound`] instead.
    #[error("{url} is not an endpoint of this server")]
    NoEndpoint {
        /// The URL called.
        url: String,
    },
    /// 400 or 422: the request is malformed or does not fit; nothing changed.
    #[error("{message}")]
    Invalid {
        /// 400 or 422.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// 401: no token, or the wrong one.
    #[error("{message}")]
    Unauthorized {
        /// The server's message.
        message: String,
    },
    /// 403: the token is valid but not allowed this call.
    #[error("{message}")]
    Forbidden {
        /// The server's message.
        message: String,
    },
    /// 404: the resource (or a parent it needs) does not exist.
    #[error("{message}")]
    NotFound {
        /// The server's message.
        message: String,
    },
    /// 409: the name is taken, children exist, a key is ambiguous, or the
    /// resource is not in a state that allows the call.
    #[error("{message}")]
    Conflict {
        /// The server's message.
        message: String,
    },
    /// 412: the `If-Match` ETag is stale; someone else changed the record.
    #[error("{message}")]
    PreconditionFailed {
        /// The server's message.
        message: String,
        /// The record's current ETag, when the server named it: read the
        /// record again (or decide to overwrite with it).
        current_etag: Option<ETag>,
    },
    /// 428: the call needs `If-Match`.
    #[error("{message}")]
    PreconditionRequired {
        /// The server's message.
        message: String,
    },
    /// 503: the server could not complete the call and changed nothing;
    /// retrying is safe.
    #[error("{message}")]
    Unavailable {
        /// The server's message.
        message: String,
    },
    /// Any other error status.
    #[error("{message}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
}

impl Error {
    /// The HTTP status the server answered, for API errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Invalid { status, .. } | Self::Server { status, .. } => Some(*status),
            Self::Unauthorized { .. } => Some(401),
            Self::Forbidden { .. } => Some(403),
            Self::NotFound { .. } | Self::NoEndpoint { .. } => Some(404),
            Self::Conflict { .. } => Some(409),
            Self::PreconditionFailed { .. } => Some(412),
            Self::PreconditionRequired { .. } => Some(428),
            Self::Unavailable { .. } => Some(503),
            Self::InvalidUrl { .. }
            | Self::InvalidCa { .. }
            | Self::Setup { .. }
            | Self::Unreachable { .. }
            | Self::Decode { .. } => None,
        }
    }

    /// An error answer to `url`: its status, body and `ETag` header.
    pub(crate) fn from_answer_to(url: &str, status: u16, body: &str, etag: Option<ETag>) -> Self {
        // Every API 404 carries {"error": ...}; a bare one is the router's
        // "no such route", which the caller must tell apart from a missing
        // record (point at the other kind of server, not "create it").
        if status == 404 && !is_api_error(body) {
            return Self::NoEndpoint {
                url: url.to_owned(),
            };
        }
        Self::from_answer(status, body, etag)
    }

    /// An error answer: its status, body and `ETag` header.
    pub(crate) fn from_answer(status: u16, body: &str, etag: Option<ETag>) -> Self {
        let message = message(status, body);
        match status {
            400 | 422 => Self::Invalid { status, message },
            401 => Self::Unauthorized { message },
            403 => Self::Forbidden { message },
            404 => Self::NotFound { message },
            409 => Self::Conflict { message },
            412 => Self::PreconditionFailed {
                message,
                current_etag: etag,
            },
            428 => Self::PreconditionRequired { message },
            503 => Self::Unavailable { message },
            _ => Self::Server { status, message },
        }
    }
}

/// Whether `body` is the API's `{"error": ...}` shape.
fn is_api_error(body: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").map(serde_json::Value::is_string))
        .unwrap_or(false)
}

/// Longest raw (non-JSON) body quoted in a message.
const MAX_RAW: usize = 2000;

/// The message of an error body: `error`, with the agent's `problems` (an
/// inventory file's) one per line; a body that is not the API's error shape
/// is quoted (shortened), an empty one described.
fn message(status: u16, body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body)
        && let Some(error) = v.get("error").and_then(serde_json::Value::as_str)
    {
        let mut m = error.to_owned();
        let problems = v.get("problems").and_then(serde_json::Value::as_array);
        for p in problems.into_iter().flatten().filter_map(|p| p.as_str()) {
            m.push_str("\n  - ");
            m.push_str(p);
        }
        return m;
    }
    let body = body.trim();
    if body.is_empty() {
        return format!("HTTP {status} without a message");
    }
    match body.char_indices().nth(MAX_RAW) {
        Some((cut, _)) => format!("{}...", &body[..cut]),
        None => body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_variants_with_the_servers_text() {
        let e = Error::from_answer(401, r#"{"error":"send the token"}"#, None);
        assert!(matches!(&e, Error::Unauthorized { message } if message == "send the token"));
        assert_eq!(e.to_string(), "send the token");
        assert_eq!(e.status(), Some(401));

        let e = Error::from_answer(412, r#"{"error":"stale"}"#, Some(ETag::new("\"7\"")));
        assert!(matches!(
            &e,
            Error::PreconditionFailed { current_etag: Some(t), .. } if t.as_str() == "\"7\""
        ));
        assert!(matches!(
            Error::from_answer(422, "{}", None),
            Error::Invalid { status: 422, .. }
        ));
        assert!(matches!(
            Error::from_answer(418, "", None),
            Error::Server { status: 418, message } if message == "HTTP 418 without a message"
        ));
    }

    #[test]
    fn a_bare_404_is_a_missing_endpoint_not_a_missing_record() {
        let e = Error::from_answer_to("http://h/v1/networks", 404, "", None);
        assert!(matches!(&e, Error::NoEndpoint { url } if url == "http://h/v1/networks"));
        assert_eq!(e.status(), Some(404));
        let e = Error::from_answer_to("http://h/v1/x", 404, r#"{"error":"no machine"}"#, None);
        assert!(matches!(e, Error::NotFound { message } if message == "no machine"));
    }

    #[test]
    fn problems_are_listed_and_raw_bodies_quoted() {
        let body = r#"{"error":"2 problem(s)","problems":["a","b"]}"#;
        assert_eq!(message(422, body), "2 problem(s)\n  - a\n  - b");
        assert_eq!(message(502, " bad gateway \n"), "bad gateway");
        let long = "x".repeat(MAX_RAW + 10);
        assert_eq!(message(500, &long).len(), MAX_RAW + 3);
    }
}
