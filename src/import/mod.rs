//! Importing: the MDM's users and devices ([`directory`]), and mail accounts onto them.

pub mod directory;
mod seen;
