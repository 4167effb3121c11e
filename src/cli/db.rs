//! `portcullis db init | dump | load | purge`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Subcommand;
use diesel::QueryableByName;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

use super::{open_store, read_password};
use crate::domain::secret::random_b64;
use crate::settings::Settings;
use crate::store::dump::{self, Document};
use crate::store::migrations::{self, Action, Outcome};
use crate::store::Backend;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create a MariaDB database (utf8mb4) and a user with rights on it only. Safe to run twice.
    Init {
        /// An administrator's URL, e.g. mysql://root@127.0.0.1:3306
        #[arg(long, value_name = "URL")]
        admin_url: String,
        #[arg(long, value_name = "NAME")]
        database: String,
        #[arg(long, value_name = "NAME")]
        user: String,
        /// The host part of the new account ('%' means any).
        #[arg(long, value_name = "HOST", default_value = "%")]
        user_host: String,
        /// Read the user's password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Write every table to one JSON document (secrets stay hashed).
    Dump {
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Load a dump into a freshly migrated, empty database (either backend).
    Load { file: PathBuf },
    /// Delete expired codes, tokens, sessions, throttle events and spent registration tokens
    /// now, as the janitor inside `serve` does every `janitor.interval_secs` (for cron, with
    /// the janitor off).
    Purge {
        /// Only count what is due.
        #[arg(long)]
        dry_run: bool,
    },
}

pub async fn run(settings: &Settings, cmd: DbCommand) -> anyhow::Result<()> {
    match cmd {
        DbCommand::Init {
            admin_url,
            database,
            user,
            user_host,
            password_stdin,
        } => {
            let password = if password_stdin {
                Some(read_password(true, "Password")?)
            } else {
                None
            };
            init(settings, &admin_url, &database, &user, &user_host, password).await
        }
        DbCommand::Dump { output } => {
            let pool = open_store(settings).await?;
            let doc = dump::dump(&pool, schema_version(settings).await?).await?;
            let text = serde_json::to_string_pretty(&doc)? + "\n";
            match output {
                Some(path) => {
                    write_private(&path, text.as_bytes())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("wrote {}", path.display());
                }
                None => print!("{text}"),
            }
            Ok(())
        }
        DbCommand::Purge { dry_run } => {
            let pool = open_store(settings).await?;
            let now = crate::now();
            let report = if dry_run {
                crate::janitor::due(&pool, settings, now).await?
            } else {
                let (_never, stop) = tokio::sync::watch::channel(false);
                crate::janitor::pass(&pool, settings, now, &stop).await?
            };
            let verb = if dry_run { "due" } else { "deleted" };
            for (table, rows) in &report.rows {
                println!("{:<20} {rows} {verb}", table.name());
            }
            eprintln!("in {} ms", report.elapsed.as_millis());
            Ok(())
        }
        DbCommand::Load { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let doc: Document = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a Portcullis dump", file.display()))?;
            let pool = open_store(settings).await?;
            let n = dump::load(&pool, &doc, &schema_version(settings).await?).await?;
            println!("loaded {n} rows");
            Ok(())
        }
    }
}

/// The newest applied migration, which dump documents record.
async fn schema_version(settings: &Settings) -> anyhow::Result<String> {
    let Outcome::Status(list) =
        migrations::run(settings.database.url.expose(), Action::Status).await?
    else {
        bail!("unexpected migration outcome");
    };
    Ok(list
        .into_iter()
        .filter(|m| m.applied)
        .map(|m| m.version)
        .max()
        .unwrap_or_default())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn init(
    settings: &Settings,
    admin_url: &str,
    database: &str,
    user: &str,
    host: &str,
    password: Option<String>,
) -> anyhow::Result<()> {
    let Backend::Mysql(admin_url) = Backend::of_url(admin_url)? else {
        bail!("--admin-url must be a mysql:// URL; SQLite needs no init (the file is created on first run)");
    };
    check_identifier("database", database)?;
    check_identifier("user", user)?;
    if host.is_empty()
        || host.len() > 255
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_%:".contains(c))
    {
        bail!("--user-host {host:?} is not a host name, address or '%'");
    }
    let timeout = Duration::from_secs(settings.database.connect_timeout_secs);
    let mut conn = crate::store::connect_mysql(&admin_url, timeout).await?;

    conn.batch_execute(&format!(
        "CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    ))
    .await
    .context("cannot create the database")?;

    let existing: Count =
        diesel::sql_query("SELECT COUNT(*) AS n FROM mysql.user WHERE User = ? AND Host = ?")
            .bind::<diesel::sql_types::Text, _>(user)
            .bind::<diesel::sql_types::Text, _>(host)
            .get_result(&mut conn)
            .await
            .context("cannot read mysql.user (does the admin account have rights to it?)")?;
    let user_exists = existing.n > 0;

    // A run on an existing account keeps its password unless a new one is given, so a second
    // run never locks out an installation that already uses it.
    let (password, generated) = match password {
        Some(p) => (Some(p), false),
        None if user_exists => (None, false),
        None => (Some(random_b64(24)), true),
    };
    if let Some(p) = &password {
        let verb = if user_exists {
            "ALTER USER"
        } else {
            "CREATE USER"
        };
        conn.batch_execute(&format!(
            "{verb} '{user}'@'{host}' IDENTIFIED BY '{}'",
            sql_string(p)
        ))
        .await
        .context("cannot create the user")?;
    }
    conn.batch_execute(&format!(
        "GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'{host}'"
    ))
    .await
    .context("cannot grant privileges")?;

    let admin = url::Url::parse(&admin_url)?;
    let mut app_url = url::Url::parse("mysql://placeholder/")?;
    app_url.set_host(admin.host_str()).ok();
    app_url.set_port(admin.port().or(Some(3306))).ok();
    app_url.set_username(user).ok();
    app_url.set_path(database);
    let shown = match &password {
        Some(p) => {
            app_url.set_password(Some(p)).ok();
            app_url.to_string()
        }
        None => app_url
            .to_string()
            .replacen(&format!("{user}@"), &format!("{user}:PASSWORD@"), 1),
    };
    println!("database `{database}` and user '{user}'@'{host}' are ready");
    if generated {
        println!("the generated password is shown only now");
    } else if password.is_none() {
        println!("the user already existed; its password is unchanged");
    }
    println!("url = \"{shown}\"");
    println!("(put it in [database] of your config file, or set PORTCULLIS__DATABASE__URL)");
    Ok(())
}

/// Database and user names go into DDL, which takes no bind parameters: allow only a safe set.
fn check_identifier(what: &str, name: &str) -> anyhow::Result<()> {
    if name.is_empty()
        || name.len() > 64
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        bail!("the {what} name {name:?} must be 1 to 64 letters, digits or underscores");
    }
    Ok(())
}

/// Escapes a value for a single-quoted MySQL string literal (default sql_mode: backslash escapes).
fn sql_string(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "''")
}

/// Writes a file only its owner can read: a dump holds every digest and the users' password
/// hashes.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // An existing file keeps its mode on open: narrow it too.
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(bytes)
}
