//! mdm-mail imports email accounts from CSV onto the users an MDM already has, renders each
//! user's email configuration profile for every platform, pushes the profiles to the user's
//! enrolled devices, and exports the user ↔ account mappings back to CSV.
//!
//! The data path, stage by stage: [`csv`] reads what spreadsheets save, [`import`] validates
//! and matches rows and commits them, [`store`] is the only module that speaks SQL,
//! [`profile`] renders each user's accounts as the profiles their devices need. [`cli`]
//! and [`http`] are thin shells over these.

pub mod accounts;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod csv;
pub mod demo;
pub mod export;
pub mod http;
pub mod import;
pub mod model;
pub mod profile;
pub mod push;
pub mod secrets;
pub mod sheet;
pub mod spool;
pub mod store;
