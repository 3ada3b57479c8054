//! HTTP: the listener (server.rs) and the whole request path (pipeline.rs).
pub mod pipeline;
pub mod server;
