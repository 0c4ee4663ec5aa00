//! Examples live in this directory as `*.rs` files; see `cargo run -p examples --example <name>`.

pub mod shop;
