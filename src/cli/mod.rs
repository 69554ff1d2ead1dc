//! The `mdm-mail` command line: parses arguments, opens the store, calls the library, prints.
//! Every command is a thin shell over a library function the HTTP layer uses too.

mod accounts;
mod admin;
mod export;
mod history;
mod import;
mod mappings;
mod output;
mod profile;
mod push;
mod secrets;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{Overrides, Settings};
use crate::import::directory::{self, LoadReport};
use crate::model::normalize_email;
use crate::store::Store;

/// Exit status when part of the work failed and the rest was done: some rows rejected and
/// the rest applied, or some users' profiles not written and the others written.
pub const EXIT_PARTIAL: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "mdm-mail",
    version,
    about = "Email accounts onto MDM users, as profiles on their devices"
)]
struct Cli {
    /// Database: a SQLite file (created on first use) or postgres://user@host/db.
    #[arg(
        long,
        env = "MDM_MAIL_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Folder of profile definitions (*.toml) [default: ./profiles].
    #[arg(long, env = "MDM_MAIL_PROFILES", global = true)]
    profiles: Option<PathBuf>,
    /// Config file [default: ./mdm-mail.toml when present].
    #[arg(long, env = "MDM_MAIL_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web wizard, the JSON API and the push worker.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Load sample users and devices into an empty store.
        #[arg(long)]
        demo: bool,
    },
    /// Set up the working folder: example profile definitions in ./profiles (kept if there),
    /// the database and its secret key.
    Init,
    /// Import email accounts from CSV, .xlsx or .ods onto existing users.
    Import(import::ImportArgs),
    /// Past imports: list them, show one, get its results file.
    Imports {
        #[command(subcommand)]
        command: history::ImportsCommand,
    },
    /// Saved column mappings: list them, remove one.
    Mappings {
        #[command(subcommand)]
        command: mappings::MappingsCommand,
    },
    /// Export accounts as CSV in the import format (passwords blank), or device mappings.
    Export(export::ExportArgs),
    /// Render users' email configuration profiles.
    Profile(profile::ProfileArgs),
    /// Remove a mail account from a user.
    Accounts {
        #[command(subcommand)]
        command: accounts::AccountsCommand,
    },
    /// Load or list the MDM's users.
    Users {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// Load or list enrolled devices.
    Devices {
        #[command(subcommand)]
        command: DirectoryCommand,
    },
    /// Manage the admins who sign in to the web wizard.
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: admin::TokenCommand,
    },
    /// Push profiles to devices: reconcile, send, show the queue.
    Push {
        #[command(subcommand)]
        command: push::PushCommand,
    },
    /// The key that seals stored passwords: check it, move to a new one.
    Secrets {
        #[command(subcommand)]
        command: secrets::SecretsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum DirectoryCommand {
    /// Add or update from a CSV file with a header row.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List what is stored.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove one: a user (by email) with their accounts and devices, or a device (by id).
    Remove {
        /// The user's email address or the device's id.
        id: String,
    },
}

/// Runs the command line and returns the process exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let server = matches!(cli.command, Command::Serve { .. });
    if !server {
        // A command whose reader goes away (`| head`) ends at once and quietly, as Unix tools
        // do, rather than failing its next write and panicking in `println!`. The server
        // keeps SIGPIPE ignored: nothing a client does may end it.
        sigpipe::reset();
    }
    init_tracing(server);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mdm-mail: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mdm-mail: {}", explain(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, leaving out a cause whose text the message before it
/// already quotes (most of our errors quote their source).
fn explain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}

fn init_tracing(server: bool) {
    let default = if server { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MDM_MAIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let listen = match &cli.command {
        Command::Serve { listen, .. } => *listen,
        _ => None,
    };
    let settings = Settings::load(
        cli.config.as_deref(),
        Overrides {
            database_url: cli.database_url,
            profiles_dir: cli.profiles,
            listen,
            secret_key: std::env::var("MDM_MAIL_SECRET_KEY").ok(),
            secret_key_file: env_path("MDM_MAIL_SECRET_KEY_FILE"),
            signing: crate::config::Signing {
                certificate: env_path("MDM_MAIL_SIGNING_CERTIFICATE"),
                key: env_path("MDM_MAIL_SIGNING_KEY"),
                pkcs12: env_path("MDM_MAIL_SIGNING_PKCS12"),
            },
            upload_limit_mib: match std::env::var("MDM_MAIL_UPLOAD_LIMIT_MIB") {
                Ok(v) => Some(v.trim().parse().with_context(|| {
                    format!("MDM_MAIL_UPLOAD_LIMIT_MIB={v:?} is not a whole number of MiB")
                })?),
                Err(_) => None,
            },
            push: crate::push::PushEnv::from_env(),
        },
    )?;
    let store = Store::open(&settings.database_url).await?;
    let code = match cli.command {
        Command::Serve { demo, .. } => serve(store.clone(), settings, demo).await?,
        Command::Init => init(&store, &settings).await?,
        Command::Import(args) => import::run(&store, &settings, args).await?,
        Command::Imports { command } => history::run(&store, command).await?,
        Command::Mappings { command } => mappings::run(&store, command).await?,
        Command::Export(args) => export::run(&store, &settings, args).await?,
        Command::Profile(args) => profile::run(&store, &settings, args).await?,
        Command::Accounts { command } => accounts::run(&store, &settings, command).await?,
        Command::Users { command } => directory_command(&store, command, Kind::Users).await?,
        Command::Devices { command } => {
            let loaded = matches!(command, DirectoryCommand::Import { .. });
            let code = directory_command(&store, command, Kind::Devices).await?;
            if loaded && code != ExitCode::FAILURE {
                warn_macs_without_user_channel(&store).await?;
                push::after_change(&store, &settings).await;
            }
            code
        }
        Command::Push { command } => push::run(&store, &settings, command).await?,
        Command::Secrets { command } => secrets::run(&store, &settings, command).await?,
        Command::Admin { command } => admin::admin(&store, command).await?,
        Command::Token { command } => admin::token(&store, command).await?,
    };
    store.close().await;
    Ok(code)
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Who the audit log names for commands run from a shell.
fn actor() -> String {
    std::env::var("USER").map_or_else(|_| "cli".to_owned(), |user| format!("cli:{user}"))
}

async fn serve(store: Store, mut settings: Settings, demo: bool) -> anyhow::Result<ExitCode> {
    if demo {
        if crate::demo::write_example_profiles(&settings.profiles_dir)
            .with_context(|| format!("cannot write {}", settings.profiles_dir.display()))?
        {
            println!(
                "demo: wrote the example profile definitions to {}; edit them (server names, identifiers) before real use",
                settings.profiles_dir.display()
            );
        }
        let push = &settings.push;
        let transport = push.nanomdm.is_some()
            || push.micromdm.is_some()
            || push.webhook.is_some()
            || push.directory.is_some();
        if !transport {
            // The demo shows the whole loop, import to device, with nothing to set up: the
            // folder transport stands in for an MDM server.
            let folder = std::env::current_dir()?.join(crate::demo::DEVICES_FOLDER);
            println!(
                "demo: no push transport is configured, so profiles are delivered as files to {}, one folder per device",
                folder.display()
            );
            settings.push.directory = Some(folder);
        }
        match crate::demo::load_if_empty(&store, &settings.key_source()).await? {
            Some(loaded) => println!(
                "demo: loaded {} users, {} devices and {} mail accounts",
                loaded.users.added,
                loaded.devices.added,
                loaded.accounts.iter().map(|a| a.counts.added).sum::<u64>()
            ),
            None => println!("demo: the store already has users; nothing loaded"),
        }
        if let Some(password) = crate::demo::ensure_admin(&store).await? {
            println!(
                "demo: sign in as {:?} with password {password}",
                crate::demo::ADMIN
            );
        }
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let address = listener.local_addr()?;
    let shutdown = shutdown_signal();
    println!("mdm-mail listening on http://{address}");
    tracing::info!(%address, store = ?store, "serving");
    // Definitions may have changed since the last run: reconcile before serving. Without
    // usable definitions the wizard and API still serve; push waits for them.
    let (stop_worker, stopped) = tokio::sync::watch::channel(false);
    let pusher = match crate::push::Pusher::from_settings(&store, &settings) {
        Ok(pusher) => Some(pusher),
        Err(e) => {
            tracing::warn!(error = %explain(&e.into()), "push is off until the profiles load");
            None
        }
    };
    let worker = match &pusher {
        Some(pusher) => {
            match pusher.after_change().await {
                Ok(report) => tracing::info!(
                    installs = report.installs,
                    removals = report.removals,
                    replacements = report.replacements,
                    "push reconciled"
                ),
                Err(e) => tracing::warn!(error = %e, "push: cannot reconcile at start-up"),
            }
            Some(pusher.spawn_worker(stopped)?)
        }
        None => None,
    };
    let state = crate::http::AppState {
        store,
        settings: Arc::new(settings),
        pusher,
    };
    crate::http::serve(listener, state, shutdown).await?;
    let _ = stop_worker.send(true);
    if let Some(worker) = worker
        && let Err(e) = worker.await
    {
        tracing::warn!(error = %e, "push worker ended abnormally");
    }
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// `init`: what a first day needs before the first import, and what to do next.
async fn init(store: &Store, settings: &Settings) -> anyhow::Result<ExitCode> {
    let dir = &settings.profiles_dir;
    if crate::demo::write_example_profiles(dir)
        .with_context(|| format!("cannot write {}", dir.display()))?
    {
        println!(
            "wrote example profile definitions to {}: set your mail servers and identifiers in them",
            dir.display()
        );
    } else {
        println!("kept the profile definitions in {}", dir.display());
    }
    let keys = crate::secrets::for_sealing(store, &settings.key_source()).await?;
    println!(
        "database {} is ready; stored passwords are sealed with key {} ({}): back it up with the database",
        store.health().await?.url,
        keys.id(),
        settings.key_source().origin()
    );
    println!(
        "next: mdm-mail users import FILE, devices import FILE, import FILE --type email|exchange, then push (see the README)"
    );
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGINT or SIGTERM (Ctrl-C elsewhere). The handlers are installed when this is
/// called, not when the future is first polled: a signal sent as soon as `serve` says it
/// listens (a supervisor or a test stopping it at once) then stops it cleanly instead of
/// killing it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt()).ok();
        let terminate = signal(SignalKind::terminate()).ok();
        async fn received(signal: Option<Signal>) {
            match signal {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        async move {
            tokio::select! {
                () = received(interrupt) => {}
                () = received(terminate) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Users,
    Devices,
}

async fn directory_command(
    store: &Store,
    command: DirectoryCommand,
    kind: Kind,
) -> anyhow::Result<ExitCode> {
    match command {
        DirectoryCommand::Import { file, json } => {
            let input = open_input(&file)?;
            let source = file.display().to_string();
            let result = match kind {
                Kind::Users => directory::load_users(store, input, &actor(), &source).await,
                Kind::Devices => directory::load_devices(store, input, &actor(), &source).await,
            };
            let report = result.with_context(|| format!("{source}: nothing was imported"))?;
            print_load_report(&source, &report, json)?;
            Ok(if report.rejected_total == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_PARTIAL)
            })
        }
        DirectoryCommand::List { json } => {
            match kind {
                Kind::Users => output::list_users(store, json).await?,
                Kind::Devices => output::list_devices(store, json).await?,
            }
            Ok(ExitCode::SUCCESS)
        }
        DirectoryCommand::Remove { id } => {
            let id = id.trim();
            Ok(match kind {
                Kind::Users => removed(
                    store.delete_user(&normalize_email(id), &actor()).await?,
                    &format!("removed user {id} with their accounts and devices"),
                    &format!("there is no user {id}"),
                ),
                Kind::Devices => removed(
                    store.delete_device(id, &actor()).await?,
                    &format!("removed device {id}"),
                    &format!("there is no device {id:?}"),
                ),
            })
        }
    }
}

/// Mail profiles reach a Mac through its user channel: a Mac without one gets nothing, which
/// is better said when the devices are loaded than found later in `push status`.
async fn warn_macs_without_user_channel(store: &Store) -> anyhow::Result<()> {
    let (some, count) = store.macs_without_user_channel(5).await?;
    if count > 0 {
        let more = if count > 5 { ", …" } else { "" };
        eprintln!(
            "warning: {count} macOS device{} without a user_channel_id ({}{more}): mail profiles are installed through the user channel (NanoMDM's UDID:UserID), so {} none until it is in the devices file",
            if count == 1 { "" } else { "s" },
            some.join(", "),
            if count == 1 { "it gets" } else { "they get" }
        );
    }
    Ok(())
}

/// Reports a removal: what was done, or that there was nothing to remove (a failure).
fn removed(done: bool, what: &str, nothing: &str) -> ExitCode {
    if done {
        println!("{what}");
        ExitCode::SUCCESS
    } else {
        eprintln!("mdm-mail: {nothing}; nothing removed");
        ExitCode::FAILURE
    }
}

fn open_input(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))
}

fn print_load_report(source: &str, report: &LoadReport, json: bool) -> anyhow::Result<()> {
    if !report.ignored_columns.is_empty() {
        eprintln!(
            "{source}: ignoring columns {}",
            report
                .ignored_columns
                .iter()
                .map(|c| format!("{c:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if json {
        println!("{}", serde_json::to_string(report)?);
        return Ok(());
    }
    for e in &report.rejected {
        match e.field {
            Some(field) => eprintln!("{source}:{}: {field}: {}", e.line, e.message),
            None => eprintln!("{source}:{}: {}", e.line, e.message),
        }
    }
    let more = report.rejected_total - report.rejected.len() as u64;
    if more > 0 {
        eprintln!("{source}: … and {more} more rows rejected");
    }
    println!(
        "{source}: {} rows: {} added, {} updated, {} unchanged, {} rejected",
        report.rows, report.added, report.updated, report.unchanged, report.rejected_total
    );
    Ok(())
}
