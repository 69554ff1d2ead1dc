//! The integration suite: the real library, binary and server against real SQLite and
//! PostgreSQL. One test binary, so the suite links once.

mod support;

mod cli;
mod directory;
mod import;
mod import_cli;
mod migrations;
mod profile;
mod properties;
mod push;
mod server;
