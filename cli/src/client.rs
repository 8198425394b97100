//! A small HTTP client for the agent's API: JSON in and out, the API's
//! `{"error": ...}` turned into a message, and unreachable servers told
//! apart from refusals (they have different exit codes).

use std::time::Duration;

use serde_json::Value;

/// Why a call did not succeed.
#[derive(Debug)]
pub enum CallError {
    /// No answer from the server.
    Unreachable(String),
    /// The server answered with an error status.
    Refused {
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
}

/// The agent (or hub) at one base URL.
#[derive(Debug)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for `base` (e.g. `http://10.77.0.1:8680`). Calls that change
    /// machines wait for their BMC, hence the long timeout.
    pub fn new(base: &str) -> Result<Client, CallError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(180))
            .build()
            .map_err(|e| CallError::Unreachable(e.to_string()))?;
        Ok(Client {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// GET `path` as JSON.
    pub async fn get(&self, path: &str) -> Result<Value, CallError> {
        let text = self.send(self.http.get(self.url(path))).await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// GET `path` as text.
    pub async fn get_text(&self, path: &str) -> Result<String, CallError> {
        self.send(self.http.get(self.url(path))).await
    }

    /// POST `body` (JSON) to `path`.
    pub async fn post_json(&self, path: &str, body: &Value) -> Result<Value, CallError> {
        let text = self.send(self.http.post(self.url(path)).json(body)).await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// POST `body` (text, e.g. YAML) to `path`.
    pub async fn post_text(
        &self,
        path: &str,
        body: String,
        kind: &str,
    ) -> Result<Value, CallError> {
        let req = self
            .http
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, kind)
            .body(body);
        let text = self.send(req).await?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<String, CallError> {
        let resp = req.send().await.map_err(|e| {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            CallError::Unreachable(msg)
        })?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| CallError::Unreachable(e.to_string()))?;
        if status.is_success() {
            return Ok(text);
        }
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| {
                let mut m = v.get("error")?.as_str()?.to_owned();
                if let Some(problems) = v.get("problems").and_then(Value::as_array) {
                    for p in problems.iter().filter_map(Value::as_str) {
                        m.push_str("\n  - ");
                        m.push_str(p);
                    }
                }
                Some(m)
            })
            .unwrap_or(text);
        Err(CallError::Refused {
            status: status.as_u16(),
            message,
        })
    }
}
