//! Listings on standard output: aligned columns for people, JSON for scripts. Both page
//! through the store, so a million users list in constant memory.

use std::io::Write;

use crate::model::{normalize_email, when};
use crate::store::Store;

const PAGE: i64 = 1000;

/// A table whose column widths come from its first page; later rows that are wider simply
/// push their line out rather than forcing the whole listing into memory.
struct Table {
    widths: Vec<usize>,
}

impl Table {
    fn new(header: &[&str], first_page: &[Vec<String>]) -> Table {
        let widths = (0..header.len())
            .map(|i| {
                first_page
                    .iter()
                    .map(|row| shown(&row[i]).chars().count())
                    .chain([header[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        Table { widths }
    }

    fn print(&self, out: &mut impl Write, row: &[impl AsRef<str>]) -> std::io::Result<()> {
        let last = row.len() - 1;
        for (i, cell) in row.iter().enumerate() {
            let cell = shown(cell.as_ref());
            if i == last {
                writeln!(out, "{cell}")?;
            } else {
                write!(out, "{cell:<width$}  ", width = self.widths[i])?;
            }
        }
        Ok(())
    }
}

/// A cell as a terminal may show it: control characters (stored before the loaders refused
/// them) written as escapes, so that data can never move the cursor, recolour or retitle
/// the admin's terminal.
fn shown(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.chars().any(char::is_control) {
        cell.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect::<String>()
            .into()
    } else {
        cell.into()
    }
}

/// Streams pages from `fetch` and prints them as a table or a JSON array.
async fn list<T, F, Fut>(
    header: &[&str],
    json: bool,
    mut fetch: F,
    cursor: fn(&T) -> String,
    cells: fn(&T) -> Vec<String>,
) -> anyhow::Result<()>
where
    T: serde::Serialize,
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<T>>>,
{
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut page = fetch(None).await?;
    let first_cells: Vec<Vec<String>> = page.iter().map(cells).collect();
    let table = Table::new(header, &first_cells);
    if json {
        write!(out, "[")?;
    } else {
        table.print(&mut out, header)?;
    }
    let mut first = true;
    loop {
        for item in &page {
            if json {
                write!(
                    out,
                    "{}{}",
                    if first { "" } else { "," },
                    serde_json::to_string(item)?
                )?;
            } else {
                table.print(&mut out, &cells(item))?;
            }
            first = false;
        }
        if page.len() < PAGE as usize {
            break;
        }
        let after = page.last().map(cursor);
        page = fetch(after).await?;
    }
    if json {
        writeln!(out, "]")?;
    }
    out.flush()?;
    Ok(())
}

/// `users list`.
pub async fn list_users(store: &Store, json: bool) -> anyhow::Result<()> {
    list(
        &["EMAIL", "DISPLAY NAME", "DEVICES", "ACCOUNTS"],
        json,
        |after| async move { Ok(store.list_users(after.as_deref(), PAGE).await?) },
        |u| normalize_email(&u.email),
        |u| {
            vec![
                u.email.clone(),
                u.display_name.clone(),
                u.devices.to_string(),
                u.accounts.to_string(),
            ]
        },
    )
    .await
}

/// `devices list`.
pub async fn list_devices(store: &Store, json: bool) -> anyhow::Result<()> {
    list(
        &[
            "DEVICE ID",
            "PLATFORM",
            "USER",
            "ENROLLMENT ID",
            "USER CHANNEL ID",
        ],
        json,
        |after| async move { Ok(store.list_devices(after.as_deref(), PAGE).await?) },
        |d| d.device_id.clone(),
        |d| {
            vec![
                d.device_id.clone(),
                d.platform.to_string(),
                d.user_email.clone(),
                d.enrollment_id.clone(),
                d.user_channel_id.clone().unwrap_or_default(),
            ]
        },
    )
    .await
}

/// `token list`.
pub async fn list_tokens(store: &Store, json: bool) -> anyhow::Result<()> {
    list(
        &["NAME", "SCOPES", "CREATED", "LAST USED"],
        json,
        |after| async move { Ok(store.list_tokens(after.as_deref(), PAGE).await?) },
        |t| t.name.clone(),
        |t| {
            vec![
                t.name.clone(),
                if t.before_scopes {
                    format!("{} (made before scopes: replace it)", t.scopes)
                } else {
                    t.scopes.to_string()
                },
                when(t.created_at),
                t.last_used_at.map_or_else(|| "never".to_owned(), when),
            ]
        },
    )
    .await
}

/// `imports list`: newest first.
pub async fn list_imports(store: &Store, json: bool) -> anyhow::Result<()> {
    list(
        &[
            "ID",
            "WHEN",
            "TYPE",
            "FILE",
            "BY",
            "ROWS",
            "ADDED",
            "UPDATED",
            "UNCHANGED",
            "DISCARDED",
            "REJECTED",
            "DUPLICATE",
        ],
        json,
        |after| async move {
            let before = after.map(|id| id.parse::<uuid::Uuid>()).transpose()?;
            Ok(store.list_imports(before, PAGE).await?)
        },
        |i| i.id.to_string(),
        |i| {
            vec![
                i.id.to_string(),
                when(i.created_at),
                i.kind.clone(),
                i.source.clone(),
                i.actor.clone(),
                i.rows.to_string(),
                i.added.to_string(),
                i.updated.to_string(),
                i.unchanged.to_string(),
                i.discarded.to_string(),
                i.rejected.to_string(),
                i.duplicates.to_string(),
            ]
        },
    )
    .await
}

/// `admin list`.
pub async fn list_admins(store: &Store, json: bool) -> anyhow::Result<()> {
    list(
        &["NAME", "ADDED", "PASSWORD SET"],
        json,
        |after| async move { Ok(store.list_admins(after.as_deref(), PAGE).await?) },
        |a| a.name.clone(),
        |a| vec![a.name.clone(), when(a.created_at), when(a.updated_at)],
    )
    .await
}
