//! The integration suite: the real library, binary and server against real SQLite and
//! PostgreSQL. One test binary, so the suite links once.

mod support;

mod api;
mod api_wiring;
mod cli;
mod contract;
mod directory;
mod export;
mod export_xlsx;
mod hardening;
mod history;
mod import;
mod import_cli;
mod import_engine;
mod literal_passwords;
mod mapping;
mod migrations;
mod profile;
mod properties;
mod push;
mod readme;
mod rotation;
mod scopes;
mod secrets;
mod server;
mod sign_in;
mod spreadsheets;
mod wizard;
mod wizard_browser;
