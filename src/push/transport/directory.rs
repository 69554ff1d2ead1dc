//! A folder: each device's profiles as files, `<folder>/<device>/<identifier>.<ext>`, for
//! manual or scripted delivery. A removal deletes the file, and for Windows writes the
//! SyncML that deletes the accounts as `<identifier>.remove.xml`. The device id and the
//! identifier are made into names by [`safe_name`], so whatever a device id holds (`/`,
//! `..`, a leading `.`) its files stay in a folder of their own under `<folder>`, and two
//! ids never share one. Files are private (0600), written beside their name and renamed
//! into place, so a reader never sees half a profile.

use std::path::{Path, PathBuf};

use super::{Accepted, Delivery, SendError};
use crate::profile::files::safe_name;
use crate::push::reconcile::JobKind;

/// A folder receiving profiles.
#[derive(Debug, Clone)]
pub struct Directory {
    root: PathBuf,
}

impl Directory {
    /// A transport writing under `root`.
    pub fn new(root: PathBuf) -> Directory {
        Directory { root }
    }

    /// Writes or removes the delivery's file.
    pub async fn send(&self, delivery: &Delivery) -> Result<Accepted, SendError> {
        let folder = self.root.join(safe_name(&delivery.device));
        let stem = safe_name(&delivery.identifier);
        let result = match (delivery.kind, &delivery.content) {
            (JobKind::Install, Some(content)) => {
                write(&folder, &format!("{stem}.{}", delivery.extension), content).await
            }
            (JobKind::Install, None) => {
                return Err(SendError::Fatal("an install without a profile".into()));
            }
            (JobKind::Remove, content) => {
                for extension in ["mobileconfig", "xml", "json"] {
                    let path = folder.join(format!("{stem}.{extension}"));
                    match tokio::fs::remove_file(&path).await {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            return Err(SendError::Retry(format!(
                                "cannot remove {}: {e}",
                                path.display()
                            )));
                        }
                        _ => {}
                    }
                }
                match content {
                    Some(content) => write(&folder, &format!("{stem}.remove.xml"), content).await,
                    None => Ok(()),
                }
            }
        };
        result.map(|()| Accepted {
            command_uuid: delivery.command_uuid,
            note: None,
        })
    }
}

async fn write(folder: &Path, name: &str, content: &[u8]) -> Result<(), SendError> {
    let fail = |e: std::io::Error| {
        SendError::Retry(format!("cannot write {}: {e}", folder.join(name).display()))
    };
    tokio::fs::create_dir_all(folder).await.map_err(fail)?;
    let path = folder.join(name);
    let content = content.to_vec();
    // Profiles carry passwords: private files, whatever the umask.
    tokio::task::spawn_blocking(move || crate::secrets::write_secret_file(&path, &content))
        .await
        .map_err(|e| fail(std::io::Error::other(e)))?
        .map_err(fail)
}
