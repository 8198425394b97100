//! `dv-site-kit`: signed offline site kits.
//!
//! A site kit is a directory or disk image (a USB stick) holding everything a
//! new site needs with no network beyond itself: the agent binary,
//! nats-server, the site's `agent.toml` and initial inventory, its CA and
//! certificates, boot artifacts, and a manifest of sha256 digests signed with
//! minisign (ed25519). `dv-agent bootstrap --kit` will verify the signature and
//! every digest and refuse a tampered kit.
//!
//! Today this crate holds the example kits under `examples/` (the `lab` site
//! that `scripts/lab.sh` serves); building and verifying kits arrives with the
//! site-kit issue.
