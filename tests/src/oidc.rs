//! A real OpenID Connect issuer for tests: panva's oidc-provider (OpenID
//! Certified) run by node from `tests/oidc-issuer/` (see its `issuer.mjs`),
//! on loopback, with one public client `dv-cli` allowed the device flow and
//! refresh tokens.
//!
//! [`Issuer::approve`] does what a person does in a browser: it opens the
//! verification URL with the user code, submits the provider's xsrf-guarded
//! confirmation form, signs in on the login page with an email address and
//! follows every redirect until the provider's success page, keeping
//! cookies like a browser. Nothing is short-circuited: the user code is
//! approved through the provider's own device verification path.
//!
//! node and the npm modules come from `scripts/setup.sh`. When they are
//! missing the test fails loudly rather than skipping: CI installs them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::process::Guarded;
use crate::sushy::free_port;

/// The client id the issuer knows.
pub const CLIENT_ID: &str = "dv-cli";

/// How many pages a sign-in may take before `approve` gives up (it takes
/// four: auto-submit, confirm, login, success).
const MAX_PAGES: usize = 8;

/// A running issuer, killed on drop.
#[derive(Debug)]
pub struct Issuer {
    url: String,
    // Closing node's stdin also ends it, should the test runner die before
    // the guard can kill it.
    _stdin: Option<ChildStdin>,
    _process: Guarded,
}

/// `tests/oidc-issuer`.
pub fn issuer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc-issuer")
}

impl Issuer {
    /// Starts the issuer on a free loopback port, its log in `dir`, and
    /// waits until it listens. Panics with what to install when node or the
    /// npm modules are missing.
    pub fn start(dir: &Path) -> Issuer {
        let source = issuer_dir();
        let node = std::env::var_os("DV_TEST_NODE").unwrap_or_else(|| "node".into());
        let have_node = Command::new(&node)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            have_node,
            "\n!!! node is not installed: the OIDC tests need it (run scripts/setup.sh, which installs nodejs) !!!\n"
        );
        let module = source.join("node_modules/oidc-provider/package.json");
        assert!(
            module.exists(),
            "\n!!! {} is missing: run scripts/setup.sh (or npm ci --prefix {}) !!!\n",
            module.display(),
            source.display()
        );
        std::fs::create_dir_all(dir).unwrap();
        let log_path = dir.join("oidc-issuer.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let port = free_port();
        let mut process = Guarded::spawn(
            Command::new(&node)
                .arg(source.join("issuer.mjs"))
                .arg(port.to_string())
                .current_dir(&source)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(log.try_clone().unwrap()),
        )
        .expect("spawn node");
        let child = process.child().unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut log = log;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("oidc-issuer ready ") {
                    let _ = ready_tx.send(url.to_owned());
                }
                let _ = writeln!(log, "{line}");
            }
        });
        let url = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "the OIDC issuer did not start within 30 s; its log:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                )
            });
        Issuer {
            url,
            _stdin: stdin,
            _process: process,
        }
    }

    /// The issuer URL (`http://127.0.0.1:PORT`), as its tokens name it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Approves `user_code` as the user `email`, as a person in a browser
    /// would. Panics with the page it got stuck on.
    pub fn approve(&self, user_code: &str, email: &str) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        if let Err(e) = runtime.block_on(self.sign_in(user_code, email)) {
            panic!("approving {user_code} as {email} at {}: {e}", self.url);
        }
    }

    async fn sign_in(&self, user_code: &str, email: &str) -> Result<(), String> {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::limited(10))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        let mut url = reqwest::Url::parse(&format!("{}/device", self.url)).unwrap();
        url.query_pairs_mut().append_pair("user_code", user_code);
        let mut page = fetch(http.get(url)).await?;
        for _ in 0..MAX_PAGES {
            let (at, status, body) = &page;
            if body.contains("Sign-in Success") {
                return Ok(());
            }
            let form = Form::parse(body)
                .ok_or_else(|| format!("the page at {at} (HTTP {status}) has no form:\n{body}"))?;
            let mut fields = form.hidden;
            if form.login {
                fields.push(("login".to_owned(), email.to_owned()));
            }
            let action = at.join(&form.action).map_err(|e| e.to_string())?;
            page = fetch(http.post(action).form(&fields)).await?;
        }
        Err(format!(
            "no success page after {MAX_PAGES} pages; the last, at {}:\n{}",
            page.0, page.2
        ))
    }
}

async fn fetch(req: reqwest::RequestBuilder) -> Result<(reqwest::Url, u16, String), String> {
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let at = resp.url().clone();
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(|e| e.to_string())?;
    Ok((at, status, body))
}

/// The first form of a page: where it posts, its hidden fields, and
/// whether it asks for a login.
#[derive(Debug)]
struct Form {
    action: String,
    hidden: Vec<(String, String)>,
    login: bool,
}

impl Form {
    fn parse(html: &str) -> Option<Form> {
        let start = html.find("<form")?;
        let end = html[start..]
            .find("</form>")
            .map_or(html.len(), |e| start + e);
        let body = &html[start..end];
        let tag_end = body.find('>')?;
        let action = attr(&body[..tag_end], "action")?;
        let mut hidden = Vec::new();
        let mut login = false;
        for input in body.split("<input").skip(1) {
            let tag = &input[..input.find('>').unwrap_or(input.len())];
            let Some(name) = attr(tag, "name") else {
                continue;
            };
            if attr(tag, "type").as_deref() == Some("hidden") {
                hidden.push((name, attr(tag, "value").unwrap_or_default()));
            } else if name == "login" {
                login = true;
            }
        }
        Some(Form {
            action,
            hidden,
            login,
        })
    }
}

/// An attribute's value (double-quoted, entities decoded) in one tag.
fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    let len = tag[at..].find('"')?;
    Some(unescape(&tag[at..at + len]))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_read_like_a_browser_would() {
        let f = Form::parse(
            r#"<html><form id="x" method="post" action="/device">
<input type="hidden" name="xsrf" value="ab&amp;c"/>
<input type="hidden" name="confirm" value="yes"/>
</form><form action="/other"></form>"#,
        )
        .unwrap();
        assert_eq!(f.action, "/device");
        assert_eq!(
            f.hidden,
            [
                ("xsrf".to_owned(), "ab&c".to_owned()),
                ("confirm".to_owned(), "yes".to_owned())
            ]
        );
        assert!(!f.login);
        let f = Form::parse(
            r#"<form id="login" method="post" action="/interaction/u1/login">
<input type="email" name="login" autofocus></form>"#,
        )
        .unwrap();
        assert!(f.login && f.hidden.is_empty());
        assert!(Form::parse("<p>nothing</p>").is_none());
    }
}
