//! `mdm-mail export`: accounts as CSV in the import format, or the device mappings report,
//! to a file or standard output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::config::Settings;
use crate::csv::Delimiter;
use crate::export::{
    ExportFormat, ExportOptions, ExportType, Exporter, OutputEncoding, parse_delimiter,
};
use crate::store::Store;

/// The arguments of `export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// What to export: email or exchange accounts (the import format, passwords blank), or
    /// mappings (each user's devices and the profile identifiers each device should have).
    #[arg(long = "type", value_name = "email|exchange|mappings")]
    what: ExportType,
    /// Write to this file instead of standard output (`-` is standard output).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// File format: csv, or xlsx (a workbook whose cells are all text: the lossless way to
    /// edit the accounts in a spreadsheet).
    #[arg(long, default_value = "csv", value_name = "csv|xlsx")]
    format: ExportFormat,
    /// Field delimiter (CSV).
    #[arg(long, default_value = "comma", value_name = "comma|semicolon|tab", value_parser = parse_delimiter)]
    delimiter: Delimiter,
    /// Text encoding (CSV): utf-8, utf-8-bom (what Excel needs to show accents) or utf-16
    /// (little-endian with a byte-order mark).
    #[arg(long, default_value = "utf-8", value_name = "utf-8|utf-8-bom|utf-16")]
    encoding: OutputEncoding,
}

/// Runs `export`.
pub async fn run(store: &Store, settings: &Settings, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let options = ExportOptions {
        format: args.format,
        delimiter: args.delimiter,
        encoding: args.encoding,
    };
    let mut exporter = match args.what {
        ExportType::Accounts(kind) => Exporter::accounts(store, kind, options).await?,
        ExportType::Mappings => {
            let profiles = Arc::new(settings.profiles()?);
            Exporter::mappings(store, profiles, options).await?
        }
    };
    match args.out.as_deref().filter(|p| *p != Path::new("-")) {
        None => {
            let mut stdout = std::io::stdout().lock();
            while let Some(chunk) = exporter.next_chunk().await? {
                stdout
                    .write_all(&chunk)
                    .context("cannot write to standard output")?;
            }
            stdout.flush().context("cannot write to standard output")?;
        }
        Some(path) => {
            write_file(path, &mut exporter).await?;
            eprintln!(
                "{}: {} {} row(s) exported",
                path.display(),
                exporter.rows(),
                exporter.export_type()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the export next to `path` and moves it into place only when complete, so a
/// failed export never leaves a truncated file that looks like a whole one.
async fn write_file(path: &Path, exporter: &mut Exporter) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let partial = path.with_file_name(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = async {
        let file = std::fs::File::create(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        let mut file = std::io::BufWriter::new(file);
        while let Some(chunk) = exporter.next_chunk().await? {
            file.write_all(&chunk)
                .with_context(|| format!("cannot write {}", partial.display()))?;
        }
        file.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::rename(&partial, path)
            .with_context(|| format!("cannot move the export into place at {}", path.display()))
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result.with_context(|| format!("{}: nothing was exported", path.display()))
}
