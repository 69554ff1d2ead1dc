//! `mdm-mail import`: the account import from a terminal or a script.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;

use super::{EXIT_PARTIAL, actor};
use crate::config::Settings;
use crate::csv::{DelimiterChoice, EncodingChoice};
use crate::import::report::ResultsCsv;
use crate::import::{self, HeaderChoice, ImportOptions, ImportResult, Mode, Progress};
use crate::model::AccountKind;
use crate::store::Store;

/// The arguments of `import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The CSV, .xlsx or .ods file (`-` reads standard input); told apart by content.
    file: PathBuf,
    /// Account type of the rows: email (IMAP/POP + SMTP) or exchange (ActiveSync).
    #[arg(long = "type", value_name = "email|exchange")]
    kind: AccountKind,
    /// Field delimiter: auto, comma, semicolon, tab or pipe.
    #[arg(
        long,
        default_value = "auto",
        value_name = "auto|comma|semicolon|tab|pipe"
    )]
    delimiter: DelimiterChoice,
    /// Text encoding: auto, utf-8, utf-16 or windows-1252.
    #[arg(
        long,
        default_value = "auto",
        value_name = "auto|utf-8|utf-16|windows-1252"
    )]
    encoding: EncodingChoice,
    /// Whether the first row is a header: auto, yes or no.
    #[arg(long, default_value = "auto", value_name = "auto|yes|no")]
    header: HeaderChoice,
    /// The sheet of a spreadsheet file to read (default: its first).
    #[arg(long, value_name = "NAME")]
    sheet: Option<String>,
    /// Read FIELD from another column: SOURCE is a column's header, or a template of
    /// columns such as {username}@{domain}. Repeatable; over --mapping.
    #[arg(long = "map", value_name = "FIELD=SOURCE")]
    map: Vec<String>,
    /// Use the column mapping saved under NAME (`mdm-mail mappings list`).
    #[arg(long, value_name = "NAME")]
    mapping: Option<String>,
    /// Save the column mapping used (--mapping and --map) under NAME, for --mapping NAME.
    #[arg(long, value_name = "NAME")]
    save_mapping: Option<String>,
    /// Decide every line and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write nothing if any line is rejected or duplicate.
    #[arg(long)]
    strict: bool,
    /// Print the summary as JSON on standard output.
    #[arg(long)]
    json: bool,
    /// Write one CSV row per input line (line, user, account, outcome, message) to this file.
    #[arg(long, value_name = "OUT.csv")]
    results: Option<PathBuf>,
    /// Do not queue the changed profiles for push after the import commits.
    #[arg(long)]
    no_push: bool,
}

/// Runs `import`.
pub async fn run(store: &Store, settings: &Settings, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let source = args.file.display().to_string();
    let (input, size): (Box<dyn Read + Send>, Option<u64>) = if args.file == Path::new("-") {
        (Box::new(std::io::stdin()), None)
    } else {
        let file =
            std::fs::File::open(&args.file).with_context(|| format!("cannot open {source}"))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let mapping =
        import::mapping::resolve(store, args.kind, args.mapping.as_deref(), &args.map).await?;
    let progress = Arc::new(Progress::default());
    let options = ImportOptions {
        mapping,
        encoding: args.encoding,
        delimiter: args.delimiter,
        header: args.header,
        sheet: args.sheet,
        strict: args.strict,
        progress: Some(Arc::clone(&progress)),
        size_hint: size,
        ..ImportOptions::new(args.kind)
    };
    let mode = if args.dry_run {
        Mode::Preview
    } else {
        Mode::Commit {
            actor: &actor(),
            source: &source,
            expected: None,
        }
    };

    let mut results = match &args.results {
        Some(path) => Some(ResultsFile::create(path)?),
        None => None,
    };
    let bar =
        (!args.json && std::io::stderr().is_terminal()).then(|| progress_bar(&progress, size));
    let outcome = import::run(
        store,
        &settings.key_source(),
        input,
        &options,
        mode,
        results
            .as_mut()
            .map(|r| &mut r.csv as &mut dyn import::LineSink),
    )
    .await;
    if let Some((bar, ticker)) = bar {
        ticker.abort();
        bar.finish_and_clear();
    }

    let (result, failure) = match outcome {
        Ok(result) => (result, None),
        Err(e) => match e.result() {
            Some(result) => (result.clone(), Some(e.to_string())),
            None => {
                if let Some(results) = results {
                    results.discard();
                }
                return Err(
                    anyhow::Error::new(e).context(format!("{source}: nothing was imported"))
                );
            }
        },
    };
    if let Some(results) = results {
        results.keep()?;
    }
    if let Some(name) = &args.save_mapping {
        import::mapping::save(store, name, args.kind, &options.mapping, &actor()).await?;
        eprintln!("{source}: saved the column mapping as {name:?}");
    }
    print_result(&source, &result, args.json)?;
    let changed = result.counts.added + result.counts.updated > 0;
    if failure.is_none() && !result.dry_run && !args.no_push && changed {
        super::push::after_change(store, settings).await;
    }
    if let Some(reason) = failure {
        eprintln!("{source}: {reason}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(if result.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PARTIAL)
    })
}

/// A results file written beside its final name and moved there only when the import has
/// run to the end, so a failed import leaves no misleading file.
struct ResultsFile {
    csv: ResultsCsv<std::io::BufWriter<std::fs::File>>,
    partial: PathBuf,
    path: PathBuf,
}

impl ResultsFile {
    fn create(path: &Path) -> anyhow::Result<ResultsFile> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = std::fs::File::create(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        Ok(ResultsFile {
            csv: ResultsCsv::new(std::io::BufWriter::new(file))?,
            partial,
            path: path.to_owned(),
        })
    }

    fn keep(self) -> anyhow::Result<()> {
        self.csv.finish()?.into_inner()?.sync_all()?;
        std::fs::rename(&self.partial, &self.path)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    fn discard(self) {
        drop(self.csv);
        let _ = std::fs::remove_file(&self.partial);
    }
}

fn progress_bar(
    progress: &Arc<Progress>,
    size: Option<u64>,
) -> (indicatif::ProgressBar, tokio::task::JoinHandle<()>) {
    let bar = match size {
        Some(size) => indicatif::ProgressBar::new(size),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let template = if size.is_some() {
        "{bar:40} {bytes}/{total_bytes} {msg} ({eta})"
    } else {
        "{spinner} {bytes} {msg}"
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    let progress = Arc::clone(progress);
    let ticking = bar.clone();
    let started = std::time::Instant::now();
    let ticker = tokio::spawn(async move {
        loop {
            let rows = progress.rows.load(Ordering::Relaxed);
            let rate = rows as f64 / started.elapsed().as_secs_f64().max(0.001);
            ticking.set_position(progress.bytes.load(Ordering::Relaxed));
            ticking.set_message(format!("{rows} rows, {rate:.0} rows/s"));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (bar, ticker)
}

/// Lines not applied shown on a terminal.
const SCREENFUL: usize = 20;

fn print_result(source: &str, result: &ImportResult, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(&result.summary())?);
        return Ok(());
    }
    for field in result.fields.iter().filter(|f| f.mapped) {
        eprintln!(
            "{source}: {} from {}",
            field.field,
            field.source.as_deref().unwrap_or("nothing")
        );
    }
    let ignored: Vec<String> = result
        .columns
        .iter()
        .filter(|c| c.column.is_none())
        .filter_map(|c| c.header.as_ref().map(|h| format!("{h:?}")))
        .collect();
    if !ignored.is_empty() {
        eprintln!("{source}: ignoring columns {}", ignored.join(", "));
    }
    // On a terminal, a screenful: the rest scrolls away unread anyway.
    let shown = if std::io::stderr().is_terminal() {
        SCREENFUL
    } else {
        result.lines.len()
    };
    for line in result.lines.iter().take(shown) {
        let field = line.field.map(|f| format!("{f}: ")).unwrap_or_default();
        eprintln!(
            "{source}:{}: {}: {field}{}",
            line.line,
            line.outcome.as_str(),
            line.message
        );
    }
    let more = result.more_lines() + (result.lines.len().saturating_sub(shown)) as u64;
    if more > 0 {
        eprintln!(
            "{source}: … and {more} more lines not applied: --results FILE writes every line's outcome"
        );
    }
    let c = &result.counts;
    let layout = match &result.sheet {
        Some(sheet) => format!("{}, sheet {:?}", sheet.format, sheet.name),
        None => format!("{}, {:?}", result.encoding, result.delimiter.to_string()),
    };
    println!(
        "{source}: {} {} rows ({layout}, {}): {c}",
        c.rows,
        result.kind,
        if result.header { "header" } else { "no header" },
    );
    match (result.dry_run, result.id) {
        (true, _) => println!("dry run: nothing was written"),
        (false, Some(id)) => {
            println!("committed as import {id}; `mdm-mail imports show {id}` shows it again");
        }
        (false, None) => {}
    }
    Ok(())
}
