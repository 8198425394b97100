//! Integration tests of `dv-protocol`, compiled as one binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod codec;
mod compat;
mod roundtrip;
mod strategies;
