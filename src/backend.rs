//! Which database a `database.url` names, decided from the URL alone (never by trying to
//! connect). Settings validate with it and the store opens with it, so neither depends on the
//! other for it.

use std::path::PathBuf;

/// A `database.url` that names no supported database.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadDatabaseUrl(String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite(PathBuf),
    Mysql(String),
}

impl Backend {
    pub fn of_url(url: &str) -> Result<Self, BadDatabaseUrl> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() || path == ":memory:" {
                return Err(BadDatabaseUrl(
                    "database.url sqlite:// needs a file path (an in-memory database cannot be shared by a pool)".into(),
                ));
            }
            Ok(Backend::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            let url = url.replacen("mariadb://", "mysql://", 1);
            url::Url::parse(&url).map_err(|e| {
                BadDatabaseUrl(format!("database.url is not a valid mysql:// URL: {e}"))
            })?;
            Ok(Backend::Mysql(url))
        } else {
            let scheme = url.split("://").next().unwrap_or(url);
            Err(BadDatabaseUrl(format!(
                "database.url scheme {scheme:?} is not supported; use sqlite://PATH or mysql://USER:PASS@HOST:PORT/DB"
            )))
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite",
            Backend::Mysql(_) => "mysql",
        }
    }
}
