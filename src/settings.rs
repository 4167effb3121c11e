//! Typed settings, layered: compiled defaults < `config/default.toml` < `--config FILE` <
//! environment (`PORTCULLIS__SECTION__KEY`). Unknown keys in files are errors; unknown
//! `PORTCULLIS__*` variables are reported so a typo does not silently do nothing.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub const ENV_PREFIX: &str = "PORTCULLIS__";
const DEFAULT_FILE: &str = "config/default.toml";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub tokens: TokenSettings,
    pub session: SessionSettings,
    pub login: LoginSettings,
    pub registration: RegistrationSettings,
    pub cors: CorsSettings,
    pub cache: CacheSettings,
    pub janitor: JanitorSettings,
    pub keys: KeySettings,
    pub metrics: MetricsSettings,
    pub branding: BrandingSettings,
    pub scopes: ScopeSettings,
    /// Resource servers a client may name with RFC 8707 `resource` (`[[resources]]` tables in
    /// a settings file; not settable from the environment). Empty: none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceSettings>,
}

/// A resource server: its identifier, which becomes the `aud` of the tokens issued for it, and
/// the scopes it accepts (a grant for it is narrowed to those, plus the OpenID Connect ones).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ResourceSettings {
    /// An absolute URI without a fragment (RFC 8707 §2), e.g. "https://api.example.com".
    pub identifier: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address the HTTP listener binds; port 0 picks a free port.
    pub bind: String,
    /// Public base URL of this server: the `iss` value and the base of every endpoint URL.
    pub issuer: String,
    /// Seconds a connection may take to send a request's headers, counted from when it is
    /// ready for one (just opened, or idle after the previous response); then it is closed.
    pub header_read_timeout_secs: u64,
    /// Seconds a request may take to send its body once its headers are in; then 408.
    pub body_read_timeout_secs: u64,
    /// Connections served at once; more wait to be accepted. Keep it under the process's
    /// open-file limit (`ulimit -n`) less the database pool.
    pub max_connections: usize,
    /// Connections from one address at once; more are closed at once. 0: no limit (behind a
    /// reverse proxy every connection comes from the proxy).
    pub max_connections_per_ip: usize,
    /// Reverse proxies (addresses or CIDR blocks) whose `Forwarded` / `X-Forwarded-For` name
    /// the client; from any other peer those headers are ignored.
    pub trusted_proxies: Vec<String>,
    /// PEM certificate chain (leaf first) for in-process TLS; with `tls_key`. Empty: plain
    /// HTTP. Both files are read again on SIGHUP.
    pub tls_cert: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `tls_cert`.
    pub tls_key: String,
    /// Serve an https issuer over plain HTTP with neither TLS nor a trusted proxy: for local
    /// development only (cookies are still `Secure`, so browsers will not send them back).
    pub insecure_allow_http: bool,
}

impl ServerSettings {
    /// Whether the listener speaks TLS itself.
    pub fn tls(&self) -> bool {
        !self.tls_cert.is_empty()
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            issuer: "http://127.0.0.1:8080".into(),
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 10,
            max_connections: 768,
            max_connections_per_ip: 128,
            trusted_proxies: Vec::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            insecure_allow_http: false,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    pub url: DatabaseUrl,
    pub auto_migrate: bool,
    pub pool_size: usize,
    pub connect_timeout_secs: u64,
    pub acquire_timeout_secs: u64,
    /// The server stops a statement that runs longer (MariaDB `max_statement_time`; SQLite's
    /// busy timeout, the wait for another writer). Answered 503.
    pub statement_timeout_secs: u64,
    /// A request still waiting for the database after this long is answered 503; its work is
    /// not cancelled (a database round trip is never cut: ARCHITECTURE.md, "Hardening").
    pub request_timeout_secs: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: DatabaseUrl("sqlite://data/portcullis.db".into()),
            auto_migrate: true,
            pool_size: 16,
            connect_timeout_secs: 5,
            acquire_timeout_secs: 5,
            statement_timeout_secs: 5,
            request_timeout_secs: 10,
        }
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("url", &self.url)
            .field("auto_migrate", &self.auto_migrate)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .field("acquire_timeout_secs", &self.acquire_timeout_secs)
            .field("statement_timeout_secs", &self.statement_timeout_secs)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .finish()
    }
}

/// A database URL; `Debug` and `redacted()` hide the password.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl DatabaseUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn redacted(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("REDACTED"));
                u.to_string()
            }
            _ => self.0.clone(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter directive; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    pub access_token_ttl_secs: i64,
    pub refresh_token_ttl_secs: i64,
    pub code_ttl_secs: i64,
    /// RFC 9700 §4.14.2: a rotated refresh token presented again revokes its family. For this
    /// many seconds after the rotation, a reuse is refused (`invalid_grant`) without revoking:
    /// several tabs of one app refreshing at once. 0 (the default): no grace.
    pub refresh_reuse_grace_secs: i64,
    /// Lifetime of an OpenID Connect id_token, in seconds; at most `keys.retired_publish_secs`.
    pub id_token_ttl_secs: i64,
    /// Lifetime of a JWT access token (RFC 9068) unless its client sets its own: short, since a
    /// resource server that validates it locally cannot see it revoked before it expires.
    /// Capped at `keys.retired_publish_secs`, so its key is published while it lives.
    pub jwt_access_token_ttl_secs: i64,
    /// The `aud` of a JWT access token whose request named no resource; empty: the issuer.
    pub default_audience: String,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            code_ttl_secs: 60,
            refresh_reuse_grace_secs: 0,
            id_token_ttl_secs: 3600,
            jwt_access_token_ttl_secs: 300,
            default_audience: String::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    pub idle_timeout_secs: i64,
    pub absolute_timeout_secs: i64,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30 * 60,
            absolute_timeout_secs: 12 * 3600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginSettings {
    /// PBKDF2-HMAC-SHA256 iterations for newly set passwords (stored in each hash).
    pub password_hash_iterations: u32,
    /// Failed logins allowed for one username from one client IP within `throttle_window_secs`;
    /// further attempts from that address are refused until the window passes.
    pub max_failures_per_user_and_ip: i64,
    /// Failed logins allowed from one client IP, whatever the usernames; then refused.
    pub max_failures_per_ip: i64,
    /// Failed logins for one username from all addresses before each further attempt for it
    /// is slowed down (never refused, so nobody can lock a user out): the wait doubles with
    /// each failure past this, from 250 ms up to `max_slowdown_ms`.
    pub max_failures_per_user: i64,
    pub max_slowdown_ms: u64,
    pub throttle_window_secs: i64,
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self {
            password_hash_iterations: 600_000,
            max_failures_per_user_and_ip: 5,
            max_failures_per_ip: 50,
            max_failures_per_user: 10,
            max_slowdown_ms: 4000,
            throttle_window_secs: 15 * 60,
        }
    }
}

/// Who may use dynamic client registration (RFC 7591).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationPolicy {
    /// The endpoint is off.
    Closed,
    /// An initial access token (`portcullis registration-token create`) is required.
    Token,
    /// Anyone may register, within the rate limit.
    Open,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationSettings {
    pub policy: RegistrationPolicy,
    /// Scopes a dynamically registered client may ask for (and gets when it names none).
    pub allowed_scope: String,
    /// Registration requests allowed per client IP within `window_secs`.
    pub max_per_ip: i64,
    pub window_secs: i64,
}

impl Default for RegistrationSettings {
    fn default() -> Self {
        Self {
            policy: RegistrationPolicy::Token,
            allowed_scope: "read write".into(),
            max_per_ip: 20,
            window_secs: 3600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CorsSettings {
    /// Origins (scheme://host[:port]) whose pages may call the token and revocation endpoints.
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Seconds a client row is reused from memory (0: read it on every request).
    pub client_ttl_secs: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self { client_ttl_secs: 5 }
    }
}

/// The janitor (issue 13): deletes expired codes, tokens, sessions, throttle events and spent
/// registration tokens, inside `serve` and as `portcullis db purge`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JanitorSettings {
    /// Seconds between passes inside `serve`; 0 turns it off (then run `db purge` from cron).
    pub interval_secs: u64,
    /// Rows per batch; each batch is one short SELECT and one DELETE by primary key.
    pub batch_size: i64,
    /// Seconds a row is kept after it expired (for audits and support questions).
    pub retention_secs: i64,
}

impl Default for JanitorSettings {
    fn default() -> Self {
        Self {
            interval_secs: 300,
            batch_size: 1000,
            retention_secs: 24 * 3600,
        }
    }
}

/// The JOSE signing keys (issue 11, `crate::keys`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySettings {
    /// Base64 of 32 bytes: the AES-256-GCM key that seals the signing keys in the database.
    /// Empty on SQLite: one is made in the database's folder. MariaDB needs it set, the same
    /// on every node.
    pub encryption_key: SecretString,
    /// Seconds a rotated-in key is published before it signs: longer than any verifier caches
    /// the JWKS, so none meets a kid it has not seen.
    pub publish_ahead_secs: i64,
    /// Seconds a key stays published after it stopped signing; tokens it signed must expire
    /// in that time.
    pub retired_publish_secs: i64,
    /// Seconds between re-reads of the keys (to pick up keys made elsewhere).
    pub refresh_secs: u64,
    /// Seconds a key signs before its successor takes over, scheduled automatically
    /// `publish_ahead_secs` ahead; 0: only `keys rotate` rotates.
    pub rotate_after_secs: i64,
}

impl Default for KeySettings {
    fn default() -> Self {
        Self {
            encryption_key: SecretString::default(),
            publish_ahead_secs: 3600,
            retired_publish_secs: 24 * 3600,
            refresh_secs: 60,
            rotate_after_secs: 90 * 24 * 3600,
        }
    }
}

impl KeySettings {
    /// `Cache-Control: max-age` of the JWKS: a verifier's copy must expire before a key
    /// published now signs, counting the time every node takes to re-read the keys.
    pub fn jwks_max_age_secs(&self) -> i64 {
        (self.publish_ahead_secs - self.refresh_secs as i64) / 2
    }
}

/// Longest resource identifier: a URI, kept as the `aud` of every token issued for it.
pub const MAX_RESOURCE_CHARS: usize = 2000;

/// RFC 8707 §2: "an absolute URI … MUST NOT include a fragment component".
fn is_resource_identifier(s: &str) -> bool {
    s.len() <= MAX_RESOURCE_CHARS
        && url::Url::parse(s).is_ok_and(|u| u.fragment().is_none())
        && !s.contains('#')
}

/// A secret setting; `Debug` hides it.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretString(pub String);

impl SecretString {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("\"REDACTED\"")
        }
    }
}

/// Where `GET /metrics` is served (issue 13).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Empty: on the main listener. An address (`127.0.0.1:9090`): on a listener of its own,
    /// plain HTTP, and no longer on the main one, so it need not be public.
    pub bind: String,
}

/// What the HTML pages show of the organisation running the server. Empty strings mean "not set".
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrandingSettings {
    /// The name in page titles and headings.
    pub product_name: String,
    /// The organisation behind it, shown under the heading when set.
    pub organisation: String,
    /// An http(s) URL of a logo image shown above the heading (also allowed by the CSP).
    pub logo_url: String,
    /// `#rrggbb`: primary buttons and links. White text sits on it, so keep it dark enough.
    pub accent_color: String,
    /// An e-mail address or URL that error pages tell people to contact.
    pub support_contact: String,
    /// The pages' language (`<html lang>`), a BCP 47 tag.
    pub language: String,
}

impl Default for BrandingSettings {
    fn default() -> Self {
        Self {
            product_name: "Portcullis".into(),
            organisation: String::new(),
            logo_url: String::new(),
            accent_color: "#1f4fd1".into(),
            support_contact: String::new(),
            language: "en".into(),
        }
    }
}

/// How the consent and account pages describe scopes to people.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScopeSettings {
    /// Scope name → the sentence shown for it. A scope with no entry is shown by its name.
    pub descriptions: std::collections::BTreeMap<String, String>,
}

impl Default for ScopeSettings {
    fn default() -> Self {
        let d = [
            ("openid", "Confirm who you are"),
            ("profile", "See your name and basic profile"),
            ("email", "See your e-mail address"),
            (
                "offline_access",
                "Keep access while you are not using the application",
            ),
        ];
        Self {
            descriptions: d
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

impl ScopeSettings {
    /// The sentence for `scope`, if the operator gave one.
    pub fn describe(&self, scope: &str) -> Option<&str> {
        self.descriptions.get(scope).map(String::as_str)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Loads settings from every layer. `file` is the `--config` argument.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        // Only variables that name a setting are read; the others are reported by
        // `unknown_env_vars` instead of failing `deny_unknown_fields`.
        let known = known_keys();
        let env = Env::prefixed(ENV_PREFIX)
            .split("__")
            .filter(move |k| is_known(&known, &k.as_str().to_ascii_lowercase()));
        Self::load_from(file, env)
    }

    fn load_from(file: Option<&Path>, env: Env) -> Result<Self, SettingsError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if Path::new(DEFAULT_FILE).is_file() {
            figment = figment.merge(Toml::file(DEFAULT_FILE));
        }
        if let Some(path) = file {
            if !path.is_file() {
                return Err(SettingsError::MissingFile(path.to_path_buf()));
            }
            figment = figment.merge(Toml::file(path));
        }
        let settings: Settings = figment
            .merge(env)
            .extract()
            .map_err(|e| SettingsError::Invalid(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the rules serde cannot express.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |m: String| Err(SettingsError::Invalid(m));
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return invalid(format!(
                "server.bind {:?} is not an address like 127.0.0.1:8080",
                self.server.bind
            ));
        }
        let issuer_ok = url::Url::parse(&self.server.issuer).is_ok_and(|u| {
            (u.scheme() == "https" || u.scheme() == "http")
                && u.query().is_none()
                && u.fragment().is_none()
        });
        if !issuer_ok {
            return invalid(format!(
                "server.issuer {:?} must be an http(s) URL without query or fragment (RFC 8414 §2)",
                self.server.issuer
            ));
        }
        if !self.metrics.bind.is_empty()
            && self.metrics.bind.parse::<std::net::SocketAddr>().is_err()
        {
            return invalid(format!(
                "metrics.bind {:?} is not an address like 127.0.0.1:9090 (or empty: the main listener)",
                self.metrics.bind
            ));
        }
        if self.server.tls_cert.is_empty() != self.server.tls_key.is_empty() {
            return invalid(
                "server.tls_cert and server.tls_key are set together or not at all".into(),
            );
        }
        if self.issuer().starts_with("https://")
            && !self.server.tls()
            && self.server.trusted_proxies.is_empty()
            && !self.server.insecure_allow_http
        {
            return invalid(format!(
                "server.issuer {:?} is https, but this server has no TLS (server.tls_cert and \
                 server.tls_key) and no TLS-terminating proxy in front (server.trusted_proxies); \
                 set one of them, or server.insecure_allow_http = true for local development",
                self.server.issuer
            ));
        }
        if let Err(e) = crate::backend::Backend::of_url(self.database.url.expose()) {
            return invalid(e.to_string());
        }
        if self.database.pool_size == 0 {
            return invalid("database.pool_size must be at least 1".into());
        }
        for (name, v) in [
            (
                "server.header_read_timeout_secs",
                self.server.header_read_timeout_secs,
            ),
            (
                "server.body_read_timeout_secs",
                self.server.body_read_timeout_secs,
            ),
            ("server.max_connections", self.server.max_connections as u64),
            (
                "database.statement_timeout_secs",
                self.database.statement_timeout_secs,
            ),
            (
                "database.request_timeout_secs",
                self.database.request_timeout_secs,
            ),
        ] {
            if v == 0 {
                return invalid(format!("{name} must be at least 1"));
            }
        }
        for (name, v) in [
            (
                "tokens.access_token_ttl_secs",
                self.tokens.access_token_ttl_secs,
            ),
            (
                "tokens.refresh_token_ttl_secs",
                self.tokens.refresh_token_ttl_secs,
            ),
            ("tokens.code_ttl_secs", self.tokens.code_ttl_secs),
            ("session.idle_timeout_secs", self.session.idle_timeout_secs),
            (
                "session.absolute_timeout_secs",
                self.session.absolute_timeout_secs,
            ),
            (
                "login.max_failures_per_user_and_ip",
                self.login.max_failures_per_user_and_ip,
            ),
            ("login.max_failures_per_ip", self.login.max_failures_per_ip),
            (
                "login.max_failures_per_user",
                self.login.max_failures_per_user,
            ),
            (
                "login.throttle_window_secs",
                self.login.throttle_window_secs,
            ),
        ] {
            if v <= 0 {
                return invalid(format!("{name} must be positive"));
            }
        }
        crate::web::client_ip::TrustedProxies::parse(&self.server.trusted_proxies)
            .map_err(SettingsError::Invalid)?;
        if !(1..=10_000).contains(&self.janitor.batch_size) {
            return invalid("janitor.batch_size must be between 1 and 10000".into());
        }
        let k = &self.keys;
        if k.refresh_secs == 0 {
            return invalid("keys.refresh_secs must be at least 1".into());
        }
        if k.publish_ahead_secs <= 2 * k.refresh_secs as i64 {
            return invalid(format!(
                "keys.publish_ahead_secs ({}) must be more than twice keys.refresh_secs ({}): every node must know a key well before it signs",
                k.publish_ahead_secs, k.refresh_secs
            ));
        }
        if k.rotate_after_secs < 0
            || (k.rotate_after_secs != 0 && k.rotate_after_secs <= k.publish_ahead_secs)
        {
            return invalid(format!(
                "keys.rotate_after_secs ({}) must be 0 (never) or more than keys.publish_ahead_secs ({}): a successor is published that long before it signs",
                k.rotate_after_secs, k.publish_ahead_secs
            ));
        }
        if self.tokens.id_token_ttl_secs <= 0 {
            return invalid("tokens.id_token_ttl_secs must be positive".into());
        }
        if k.retired_publish_secs
            < self
                .tokens
                .access_token_ttl_secs
                .max(self.tokens.id_token_ttl_secs)
        {
            return invalid(
                "keys.retired_publish_secs must be at least tokens.access_token_ttl_secs and tokens.id_token_ttl_secs: a retired key stays published until what it signed has expired".into(),
            );
        }
        if !k.encryption_key.expose().is_empty() {
            if let Err(e) = crate::keys::Kek::from_base64(k.encryption_key.expose()) {
                return invalid(e.to_string());
            }
        }
        if self.janitor.retention_secs < 0 {
            return invalid("janitor.retention_secs must not be negative".into());
        }
        // A grace longer than a few minutes would make a stolen, rotated token safe to reuse.
        if !(0..=300).contains(&self.tokens.refresh_reuse_grace_secs) {
            return invalid("tokens.refresh_reuse_grace_secs must be between 0 and 300".into());
        }
        if crate::domain::scope::Scope::parse(&self.registration.allowed_scope).is_none() {
            return invalid(
                "registration.allowed_scope has characters RFC 6749 §3.3 forbids".into(),
            );
        }
        for origin in &self.cors.allowed_origins {
            let ok =
                url::Url::parse(origin).is_ok_and(|u| u.origin().ascii_serialization() == *origin);
            if !ok {
                return invalid(format!(
                    "cors.allowed_origins: {origin:?} is not an origin like https://app.example"
                ));
            }
        }
        let b = &self.branding;
        if !is_hex_colour(&b.accent_color) {
            return invalid(format!(
                "branding.accent_color {:?} must be a colour like #1f4fd1",
                b.accent_color
            ));
        }
        let logo_ok = b.logo_url.is_empty()
            || url::Url::parse(&b.logo_url)
                .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.has_host());
        if !logo_ok {
            return invalid(format!(
                "branding.logo_url {:?} must be an http(s) URL",
                b.logo_url
            ));
        }
        let lang_ok = !b.language.is_empty()
            && b.language.len() <= 35
            && b.language
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !lang_ok {
            return invalid(format!(
                "branding.language {:?} must be a language tag like en or pt-BR",
                b.language
            ));
        }
        if b.product_name.trim().is_empty() {
            return invalid("branding.product_name must not be empty".into());
        }
        if self.login.password_hash_iterations < 1000 {
            return invalid("login.password_hash_iterations must be at least 1000".into());
        }
        // Not bounded by keys.retired_publish_secs: `grants::access_ttl` caps every JWT's
        // lifetime (a client's own setting too) at it.
        if self.tokens.jwt_access_token_ttl_secs <= 0 {
            return invalid("tokens.jwt_access_token_ttl_secs must be positive".into());
        }
        if !self.tokens.default_audience.is_empty()
            && !is_resource_identifier(&self.tokens.default_audience)
        {
            return invalid(format!(
                "tokens.default_audience {:?} must be an absolute URI without a fragment",
                self.tokens.default_audience
            ));
        }
        self.validate_resources().map_err(SettingsError::Invalid)
    }

    fn validate_resources(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for r in &self.resources {
            if !is_resource_identifier(&r.identifier) {
                return Err(format!(
                    "resources: identifier {:?} must be an absolute URI without a fragment, at most {MAX_RESOURCE_CHARS} characters (RFC 8707 §2)",
                    r.identifier
                ));
            }
            if !seen.insert(r.identifier.as_str()) {
                return Err(format!("resources: {:?} is listed twice", r.identifier));
            }
            let scopes = r.scopes.join(" ");
            let one_each = crate::domain::scope::Scope::parse(&scopes)
                .is_some_and(|s| s.iter().count() == r.scopes.len());
            if r.scopes.is_empty() || !one_each {
                return Err(format!(
                    "resources: the scopes of {:?} must be one or more scope tokens (RFC 6749 §3.3)",
                    r.identifier
                ));
            }
        }
        Ok(())
    }

    /// The configured resource server named `identifier`, compared exactly (RFC 8707 §2).
    pub fn resource(&self, identifier: &str) -> Option<&ResourceSettings> {
        self.resources.iter().find(|r| r.identifier == identifier)
    }

    /// The issuer without a trailing slash, for building endpoint URLs.
    pub fn issuer(&self) -> &str {
        self.server.issuer.trim_end_matches('/')
    }

    /// `PORTCULLIS__*` variables that name no setting.
    pub fn unknown_env_vars() -> Vec<String> {
        let known = known_keys();
        std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with(ENV_PREFIX))
            .filter(|k| {
                let key = k[ENV_PREFIX.len()..]
                    .to_ascii_lowercase()
                    .replace("__", ".");
                !is_known(&known, &key)
            })
            .collect()
    }

    /// The effective settings as TOML, secrets redacted (`config show`).
    pub fn to_redacted_toml(&self) -> String {
        let mut copy = self.clone();
        copy.database.url = DatabaseUrl(self.database.url.redacted());
        if !copy.keys.encryption_key.expose().is_empty() {
            copy.keys.encryption_key = SecretString("REDACTED".into());
        }
        toml_string(&copy)
    }
}

/// `#rrggbb`, the only colour form accepted: it goes into the stylesheet as is.
fn is_hex_colour(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit())
}

/// Settings as TOML: one `[section]` per struct, and a `[section.key]` table for a map
/// (`[scopes.descriptions]`). Strings are JSON-quoted, which TOML reads the same way.
fn toml_string(s: &Settings) -> String {
    let value = serde_json::to_value(s).unwrap_or_default();
    let mut out = String::new();
    if let serde_json::Value::Object(sections) = value {
        for (section, body) in sections {
            let serde_json::Value::Object(keys) = body else {
                continue;
            };
            let mut tables = String::new();
            out.push_str(&format!("[{section}]\n"));
            for (k, v) in keys {
                match v {
                    serde_json::Value::Object(entries) => {
                        tables.push_str(&format!("[{section}.{k}]\n"));
                        for (ek, ev) in entries {
                            tables.push_str(&format!("{} = {ev}\n", toml_key(&ek)));
                        }
                        tables.push('\n');
                    }
                    v => out.push_str(&format!("{k} = {v}\n")),
                }
            }
            out.push('\n');
            out.push_str(&tables);
        }
    }
    out
}

/// A bare TOML key when it can be one, else a quoted one.
fn toml_key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        serde_json::Value::String(k.to_string()).to_string()
    }
}

/// Every `section.key` (and `section.map.entry` for the default entries of a map).
fn known_keys() -> Vec<String> {
    let value = serde_json::to_value(Settings::default()).unwrap_or_default();
    let mut keys = Vec::new();
    if let serde_json::Value::Object(sections) = value {
        for (section, body) in sections {
            if let serde_json::Value::Object(fields) = body {
                for (k, v) in fields {
                    if let serde_json::Value::Object(entries) = v {
                        keys.extend(entries.keys().map(|e| format!("{section}.{k}.{e}")));
                    }
                    keys.push(format!("{section}.{k}"));
                }
            }
        }
    }
    keys
}

/// Whether `key` names a setting. Any entry of a map is one: an operator may describe a scope
/// that has no default description.
fn is_known(known: &[String], key: &str) -> bool {
    known.iter().any(|k| k == key) || key.starts_with("scopes.descriptions.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().unwrap();
    }

    #[test]
    fn url_debug_hides_password() {
        let url = DatabaseUrl("mysql://app:s3cret@db:3306/auth".into());
        assert!(!format!("{url:?}").contains("s3cret"));
        assert!(url.redacted().contains("REDACTED"));
    }

    #[test]
    fn branding_is_checked() {
        let mut s = Settings::default();
        s.branding.accent_color = "red; } body { display: none".into();
        assert!(s.validate().is_err());
        s.branding.accent_color = "#0a0B0c".into();
        s.branding.logo_url = "javascript:alert(1)".into();
        assert!(s.validate().is_err());
        s.branding.logo_url = "https://cdn.example/logo.svg".into();
        s.branding.language = "en\"><script>".into();
        assert!(s.validate().is_err());
        s.branding.language = "pt-BR".into();
        s.validate().unwrap();
    }

    #[test]
    fn resources_and_audiences_are_checked() {
        let api = |id: &str, scopes: &[&str]| ResourceSettings {
            identifier: id.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        };
        let mut s = Settings {
            resources: vec![
                api("https://api.example.com", &["read"]),
                api("urn:example:reports", &["reports"]),
            ],
            ..Settings::default()
        };
        s.validate().unwrap();
        assert!(s.resource("https://api.example.com").is_some());
        assert!(s.resource("https://api.example.com/").is_none());
        // RFC 8707 §2: absolute, no fragment; and each listed once, with scope tokens.
        for bad in [
            vec![api("/relative", &["read"])],
            vec![api("https://api.example.com#frag", &["read"])],
            vec![
                api("https://a.example", &["read"]),
                api("https://a.example", &["write"]),
            ],
            vec![api("https://a.example", &[])],
            vec![api("https://a.example", &["read write"])],
            vec![api("https://a.example", &["caf\u{e9}"])],
            vec![api(
                &format!("https://a.example/{}", "x".repeat(MAX_RESOURCE_CHARS)),
                &["read"],
            )],
        ] {
            s.resources = bad.clone();
            assert!(s.validate().is_err(), "{bad:?}");
        }
        s.resources.clear();
        s.tokens.default_audience = "api".into();
        assert!(s.validate().is_err());
        s.tokens.default_audience = "https://apis.example.com".into();
        s.tokens.jwt_access_token_ttl_secs = 0;
        assert!(s.validate().is_err());
    }

    #[test]
    fn trusted_proxies_and_janitor_settings_are_checked() {
        let mut s = Settings::default();
        s.server.trusted_proxies = vec!["10.0.0.0/8".into(), "::1".into()];
        s.validate().unwrap();
        s.server.trusted_proxies = vec!["proxy.internal".into()];
        assert!(s.validate().is_err());
        s.server.trusted_proxies = vec![];
        s.janitor.batch_size = 0;
        assert!(s.validate().is_err());
        s.janitor.batch_size = 500;
        s.janitor.retention_secs = -1;
        assert!(s.validate().is_err());
    }

    #[test]
    fn config_show_writes_maps_as_tables_that_read_back() {
        let mut s = Settings::default();
        s.scopes
            .descriptions
            .insert("photos:read".into(), "See your \"photos\"".into());
        let text = toml_string(&s);
        assert!(text.contains("[scopes.descriptions]\n"), "{text}");
        let back: Settings = Figment::from(Toml::string(&text)).extract().unwrap();
        assert_eq!(
            back.scopes.describe("photos:read"),
            Some("See your \"photos\"")
        );
        assert_eq!(back.scopes.describe("openid"), Some("Confirm who you are"));
    }

    #[test]
    fn known_keys_cover_sections() {
        let keys = known_keys();
        assert!(keys.contains(&"database.url".to_string()));
        assert!(keys.contains(&"server.issuer".to_string()));
    }
}
