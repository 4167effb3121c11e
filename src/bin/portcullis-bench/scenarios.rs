//! The scenarios: what one iteration does, and the measurement around it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use base64::Engine;
use portcullis::domain::clients::{NewClientSpec, ACCESS_TOKEN_FORMAT};
use portcullis::domain::password::Password;
use portcullis::domain::registration::ID_TOKEN_ALG;
use portcullis::domain::secret::{prefix, time_ordered_id, Secret};
use portcullis::keys::Algorithm;
use portcullis::oauth::accounts::{self, Lifetimes};
use portcullis::store::models::{AuthorizationCode, Consent, Token, TokenKind};
use portcullis::store::{codes, consents, tokens, Pool};

use crate::counts::{Callgrind, DbCounts};
use crate::http::{self, Conn};
use crate::procstat;
use crate::{Args, Backend};

/// The default order. store-insert runs last: its burst of rows leaves InnoDB flushing for a
/// while, which would otherwise slow whichever scenario came next.
pub const ALL: [&str; 13] = [
    "healthz",
    "client-credentials",
    "client-credentials-jwt",
    "introspect",
    "userinfo",
    "refresh",
    "code-exchange",
    "auth-code",
    "auth-code-oidc",
    "auth-code-oidc-es256",
    "auth-code-oidc-eddsa",
    "revoke",
    "store-insert",
];
const REDIRECT: &str = "https://bench.example/cb";

/// The scenarios `--peer` runs on both servers, each on Portcullis first, then on the peer.
pub const PEER_SCENARIOS: [&str; 4] = [
    "client-credentials",
    "introspect",
    "code-exchange",
    "refresh",
];
/// A scenario's name when it runs against the peer.
pub const PEER_PREFIX: &str = "peer:";

/// Everything the scenarios share.
pub struct Context {
    pub concurrency: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// Codes minted per second of a code-exchange scenario (`--codes-per-second`).
    codes_per_second: u64,
    pub pool: Pool,
    /// The first server: seeding, metrics and the soak talk to it.
    pub addr: SocketAddr,
    /// Every server under test; workers connect to them in turn.
    pub addrs: Vec<SocketAddr>,
    next_addr: AtomicUsize,
    /// The servers' and the database servers' processes, for CPU and memory from /proc.
    pub server_pids: Vec<u32>,
    pub db_pids: Vec<u32>,
    pub ticks: u64,
    /// Set with `--callgrind`: the server's instructions are counted per window.
    pub callgrind: Option<Callgrind>,
    /// On MariaDB: a connection that reads the server's work counters around each window.
    pub db_counter: Option<tokio::sync::Mutex<portcullis::store::MysqlConn>>,
    pub db_overhead: DbCounts,
    client_id: String,
    basic: String,
    user_id: String,
    session_cookie: String,
    /// OpenID Connect clients (scope `openid read`, consent given), one per id_token
    /// algorithm: the client id and its Basic credentials.
    oidc_clients: Vec<(Algorithm, String, String)>,
    /// Basic credentials of a client whose access tokens are ES256 JWTs (RFC 9068).
    jwt_basic: String,
    introspect_token: String,
    /// An access token for the seeded user with `openid profile email`, for userinfo.
    userinfo_token: String,
    /// Access tokens issued during client-credentials, to revoke later.
    issued: Mutex<Vec<String>>,
    /// With `--peer`: the other server the `peer:` scenarios run against.
    peer: Option<Peer>,
}

/// node-oidc-provider as `bench/peer/server.js` runs it: its fixed client, a token to introspect,
/// and its process for CPU and memory.
pub struct Peer {
    addr: SocketAddr,
    pids: Vec<u32>,
    basic: String,
    introspect_token: String,
}

/// The client `bench/peer/server.js` registers.
const PEER_CLIENT: (&str, &str) = ("bench", "bench-secret");

impl Peer {
    pub async fn connect(url: &str, pid: Option<u32>) -> anyhow::Result<Self> {
        let addr = crate::target_addr(url)?;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", PEER_CLIENT.0, PEER_CLIENT.1));
        let mut peer = Peer {
            addr,
            pids: pid.into_iter().collect(),
            basic,
            introspect_token: String::new(),
        };
        let r = Conn::connect(addr)
            .await?
            .send(&peer.client_credentials_request())
            .await?;
        peer.introspect_token = json_field(&r.body, "access_token").with_context(|| {
            format!(
                "the peer at {url} gave no token to client_credentials ({})",
                r.status
            )
        })?;
        Ok(peer)
    }

    fn auth_header(&self) -> String {
        format!("Authorization: Basic {}\r\n", self.basic)
    }

    fn client_credentials_request(&self) -> Vec<u8> {
        http::post_form(
            "/token",
            &self.auth_header(),
            "grant_type=client_credentials&scope=read",
        )
    }

    /// `n` codes or refresh tokens (`kind`), minted by the peer's own models.
    async fn mint(&self, kind: &str, n: u64) -> anyhow::Result<Vec<String>> {
        let r = Conn::connect(self.addr)
            .await?
            .send(&http::post_form(
                &format!("/bench/mint?kind={kind}&n={n}"),
                "",
                "",
            ))
            .await?;
        if r.status != 200 {
            bail!("the peer did not mint {kind}s ({})", r.status);
        }
        Ok(serde_json::from_slice(&r.body)?)
    }
}

/// A confidential client for `REDIRECT` with `scope` and `metadata`: its id and its Basic
/// credentials (base64 of `id:secret`).
async fn bench_client(
    pool: &Pool,
    name: &str,
    scope: &str,
    resource_server: bool,
    metadata: serde_json::Map<String, serde_json::Value>,
    now: i64,
) -> anyhow::Result<(String, String)> {
    let spec = NewClientSpec {
        name: name.into(),
        redirect_uris: vec![REDIRECT.into()],
        public: false,
        grant_types: vec![],
        scope: scope.into(),
        auth_method: None,
        resource_server,
    };
    let (c, secret) =
        accounts::create_client_with(pool, spec, Lifetimes::default(), metadata, now).await?;
    let secret = secret.map(|s| s.expose().to_string()).unwrap_or_default();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.client_id, secret));
    Ok((c.client_id, basic))
}

impl Context {
    pub async fn seed(
        args: &Args,
        pool: Pool,
        addrs: Vec<SocketAddr>,
        server_pids: Vec<u32>,
        db_pids: Vec<u32>,
        settings: &portcullis::Settings,
    ) -> anyhow::Result<Self> {
        let addr = *addrs.first().context("no server to benchmark")?;
        let now = portcullis::now();
        // A user with the claims userinfo releases, as a real account would have.
        let profile = portcullis::store::models::Profile {
            email: Some("bench@bench.example".into()),
            email_verified: true,
            name: Some("Bench User".into()),
            given_name: Some("Bench".into()),
            family_name: Some("User".into()),
            ..Default::default()
        };
        let password = Password::new("bench-password");
        let user =
            accounts::create_user_with(&pool, "bench", &password, profile, 1000, now).await?;
        let (client_id, basic) = bench_client(
            &pool,
            "Bench",
            "read write",
            true,
            serde_json::Map::new(),
            now,
        )
        .await?;
        consents::save(
            &pool,
            &Consent {
                user_id: user.id.clone(),
                client_id: client_id.clone(),
                scope: "read".into(),
                granted_at: now,
            },
        )
        .await?;
        let mut oidc_clients = Vec::new();
        for alg in Algorithm::ALL {
            let mut metadata = serde_json::Map::new();
            metadata.insert(ID_TOKEN_ALG.into(), alg.name().into());
            let name = format!("Bench {alg}");
            let (id, basic) =
                bench_client(&pool, &name, "openid read", false, metadata, now).await?;
            consents::save(
                &pool,
                &Consent {
                    user_id: user.id.clone(),
                    client_id: id.clone(),
                    scope: "openid read".into(),
                    granted_at: now,
                },
            )
            .await?;
            oidc_clients.push((alg, id, basic));
        }
        // The same client as "Bench", its access tokens ES256 JWTs: the signing cost per token.
        let mut metadata = serde_json::Map::new();
        metadata.insert(ID_TOKEN_ALG.into(), Algorithm::Es256.name().into());
        metadata.insert(ACCESS_TOKEN_FORMAT.into(), "jwt".into());
        let (_, jwt_basic) =
            bench_client(&pool, "Bench JWT", "read write", false, metadata, now).await?;
        let session = portcullis::oauth::login::start_session(&pool, settings, &user, now).await?;
        let mut ctx = Context {
            concurrency: args.concurrency,
            duration: Duration::from_secs(args.duration),
            warmup: Duration::from_secs(args.warmup),
            codes_per_second: args.codes_per_second,
            pool,
            addr,
            addrs,
            next_addr: AtomicUsize::new(0),
            server_pids,
            db_pids,
            ticks: procstat::clock_ticks(),
            callgrind: None,
            db_counter: None,
            db_overhead: DbCounts::default(),
            client_id,
            basic,
            user_id: user.id,
            session_cookie: session.expose().to_string(),
            oidc_clients,
            jwt_basic,
            introspect_token: String::new(),
            userinfo_token: String::new(),
            issued: Mutex::new(Vec::new()),
            peer: None,
        };
        // The token a relying party holds after an OpenID Connect sign-in, stored the way the
        // code exchange stores it.
        let secret = Secret::generate(prefix::ACCESS_TOKEN);
        let mut row = ctx.access_token_row_for(&secret);
        row.client_id = ctx.oidc_clients[0].1.clone();
        row.user_id = Some(ctx.user_id.clone());
        row.scope = "openid profile email".into();
        row.auth_time = Some(now);
        tokens::insert(&ctx.pool, &row).await?;
        ctx.userinfo_token = secret.expose().to_string();
        // A live access token for introspection, issued the normal way.
        let mut conn = Conn::connect(addr).await?;
        let r = conn.send(&ctx.client_credentials_request()).await?;
        let body: serde_json::Value = serde_json::from_slice(&r.body)?;
        ctx.introspect_token = body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if ctx.introspect_token.is_empty() {
            bail!(
                "seeding failed: no token from client_credentials ({})",
                r.status
            );
        }
        if let Some(url) = &args.peer {
            ctx.peer = Some(Peer::connect(url, args.peer_pid).await?);
        }
        Ok(ctx)
    }

    /// The seeded confidential client.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    fn auth_header(&self) -> String {
        format!("Authorization: Basic {}\r\n", self.basic)
    }

    fn client_credentials_request(&self) -> Vec<u8> {
        http::post_form(
            "/oauth2/token",
            &self.auth_header(),
            "grant_type=client_credentials&scope=read",
        )
    }

    fn access_token_row(&self) -> Token {
        self.access_token_row_for(&Secret::generate(prefix::ACCESS_TOKEN))
    }

    fn access_token_row_for(&self, secret: &Secret) -> Token {
        let now = portcullis::now();
        Token {
            token_hash: secret.digest().as_bytes().to_vec(),
            kind: TokenKind::Access,
            client_id: self.client_id.clone(),
            user_id: None,
            scope: "read".into(),
            family_id: time_ordered_id(),
            created_at: now,
            expires_at: now + 3600,
            consumed_at: None,
            revoked_at: None,
            parent_hash: None,
            auth_time: None,
            resource: None,
            sid: None,
        }
    }

    /// `n` authorization codes for the seeded user and client, stored as the authorize endpoint
    /// stores them (ten minutes to live, so the minting does not eat into their lifetime).
    async fn seed_codes(&self, n: u64) -> anyhow::Result<Vec<String>> {
        use futures_util::{StreamExt, TryStreamExt};
        let now = portcullis::now();
        futures_util::stream::iter(0..n)
            .map(|_| async move {
                let secret = Secret::generate(prefix::CODE);
                let code = AuthorizationCode {
                    code_hash: secret.digest().as_bytes().to_vec(),
                    client_id: self.client_id.clone(),
                    user_id: self.user_id.clone(),
                    redirect_uri: REDIRECT.into(),
                    redirect_uri_explicit: true,
                    scope: "read".into(),
                    code_challenge: None,
                    code_challenge_method: None,
                    nonce: None,
                    family_id: time_ordered_id(),
                    created_at: now,
                    expires_at: now + 600,
                    consumed_at: None,
                    auth_time: Some(now),
                    resource: None,
                    sid: None,
                };
                codes::insert(&self.pool, &code).await?;
                Ok::<_, anyhow::Error>(secret.expose().to_string())
            })
            .buffer_unordered(16)
            .try_collect()
            .await
    }

    /// A refresh token stored directly: each refresh worker starts its own chain.
    async fn seed_refresh_token(&self) -> anyhow::Result<String> {
        let secret = Secret::generate(prefix::REFRESH_TOKEN);
        let now = portcullis::now();
        tokens::insert(
            &self.pool,
            &Token {
                token_hash: secret.digest().as_bytes().to_vec(),
                kind: TokenKind::Refresh,
                client_id: self.client_id.clone(),
                user_id: Some(self.user_id.clone()),
                scope: "read".into(),
                family_id: time_ordered_id(),
                created_at: now,
                expires_at: now + 86400,
                consumed_at: None,
                revoked_at: None,
                parent_hash: None,
                auth_time: None,
                resource: None,
                sid: None,
            },
        )
        .await?;
        Ok(secret.expose().to_string())
    }
}

/// One scenario's measurements.
pub struct Outcome {
    pub name: String,
    pub iterations: u64,
    pub errors: u64,
    pub seconds: f64,
    pub latencies_us: Vec<u32>,
    pub server_cpu_us: Option<u64>,
    pub db_cpu_us: Option<u64>,
    pub max_rss_kib: Option<u64>,
    /// Instructions the server executed in the window (`--callgrind`).
    pub server_instructions: Option<u64>,
    /// MariaDB's statements and row operations in the window.
    pub db_counts: Option<DbCounts>,
    /// The mean of the server's `portcullis_db_pool_waiting` gauge, sampled every 200 ms:
    /// requests queued for a database connection.
    pub pool_queue: Option<f64>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.iterations as f64 / self.seconds
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }

    fn per_iteration(&self, cpu: Option<u64>) -> String {
        match cpu {
            Some(us) if self.iterations > 0 => format!("{:.0}", us as f64 / self.iterations as f64),
            _ => "–".into(),
        }
    }

    /// Server and database CPU together per iteration (the database's is 0 where there is no
    /// separate database process: SQLite, the in-memory peer).
    fn total_cpu_per_iteration(&self) -> String {
        self.per_iteration(self.server_cpu_us.map(|s| s + self.db_cpu_us.unwrap_or(0)))
    }

    /// A count per iteration, with `decimals` places after dividing by `unit`.
    fn count_per_iteration(&self, count: Option<u64>, unit: f64, decimals: usize) -> String {
        match count {
            Some(n) if self.iterations > 0 => {
                format!("{:.*}", decimals, n as f64 / unit / self.iterations as f64)
            }
            _ => "–".into(),
        }
    }

    /// The time waited for a database connection per iteration, by Little's law: the mean
    /// queue over the rate. Per iteration, not per request (a flow is two requests).
    fn pool_wait_ms(&self) -> String {
        match self.pool_queue {
            Some(q) if self.iterations > 0 => format!("{:.2}", 1000.0 * q / self.rate()),
            _ => "–".into(),
        }
    }

    pub fn row(&self) -> String {
        format!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.name,
            self.rate(),
            self.percentile(0.5),
            self.percentile(0.99),
            self.latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0,
            self.errors,
            self.per_iteration(self.server_cpu_us),
            self.per_iteration(self.db_cpu_us),
            self.max_rss_kib
                .map(|k| format!("{:.1}", k as f64 / 1024.0))
                .unwrap_or_else(|| "–".into()),
            self.count_per_iteration(self.server_instructions, 1000.0, 1),
            self.count_per_iteration(self.db_counts.map(|c| c.statements), 1.0, 2),
            self.count_per_iteration(self.db_counts.map(|c| c.row_operations), 1.0, 1),
            self.pool_queue
                .map(|q| format!("{q:.1}"))
                .unwrap_or_else(|| "–".into()),
            self.pool_wait_ms(),
            self.count_per_iteration(self.db_counts.map(|c| c.row_lock_waits), 1.0, 3),
            self.count_per_iteration(self.db_counts.map(|c| c.row_lock_time_ms), 1.0, 2),
        )
    }
}

/// What a worker does once; returns whether the iteration succeeded.
pub type Step = Arc<
    dyn Fn(usize, Arc<Mutex<WorkerState>>) -> futures_util::future::BoxFuture<'static, bool>
        + Send
        + Sync,
>;

/// A worker's connection and, for refresh, its current token; for code-exchange, its codes.
pub struct WorkerState {
    conn: Option<Conn>,
    refresh_token: String,
    codes: Vec<String>,
}

pub async fn run(ctx: &Arc<Context>, name: &str) -> anyhow::Result<Outcome> {
    let step = step_for(ctx, name, true)?;
    let mut states = Vec::new();
    for _ in 0..ctx.concurrency {
        states.push(ctx.worker(name).await?);
    }
    let mut outcome = measure(ctx, name, states, step).await?;
    if name == "store-insert" {
        // It ran in this process: the server's columns would only show it idle.
        outcome.server_cpu_us = None;
        outcome.max_rss_kib = None;
        outcome.server_instructions = None;
    }
    Ok(outcome)
}

impl Context {
    /// The server the next worker talks to: each in turn, as a round-robin load balancer would.
    fn worker_addr(&self) -> SocketAddr {
        let i = self.next_addr.fetch_add(1, Ordering::Relaxed);
        self.addrs[i % self.addrs.len()]
    }

    /// The peer, when `name` is one of its scenarios (`peer:…`).
    fn peer_for(&self, name: &str) -> anyhow::Result<Option<&Peer>> {
        if !name.starts_with(PEER_PREFIX) {
            return Ok(None);
        }
        match &self.peer {
            Some(peer) => Ok(Some(peer)),
            None => bail!("{name} needs --peer"),
        }
    }

    /// A worker's own connection, and for refresh its own token chain, for code-exchange its
    /// own pre-minted codes: on Portcullis stored through the store, on the peer by its models.
    pub async fn worker(&self, scenario: &str) -> anyhow::Result<Arc<Mutex<WorkerState>>> {
        let peer = self.peer_for(scenario)?;
        let base = scenario.trim_start_matches(PEER_PREFIX);
        let codes_each = self.codes_per_second * (self.duration + self.warmup).as_secs()
            / self.concurrency as u64
            + 1;
        let (refresh_token, codes) = match (base, peer) {
            ("refresh", None) => (self.seed_refresh_token().await?, Vec::new()),
            ("refresh", Some(p)) => (p.mint("refresh", 1).await?.remove(0), Vec::new()),
            ("code-exchange", None) => (String::new(), self.seed_codes(codes_each).await?),
            ("code-exchange", Some(p)) => (String::new(), p.mint("code", codes_each).await?),
            _ => (String::new(), Vec::new()),
        };
        let addr = match peer {
            Some(p) => p.addr,
            None => self.worker_addr(),
        };
        Ok(Arc::new(Mutex::new(WorkerState {
            conn: Some(Conn::connect(addr).await?),
            refresh_token,
            codes,
        })))
    }
}

/// What one iteration of scenario `name` does. `keep_issued`: client-credentials keeps the
/// tokens it gets for revoke to use later.
pub fn step_for(ctx: &Arc<Context>, name: &str, keep_issued: bool) -> anyhow::Result<Step> {
    let step: Step = match name {
        // The storage ceiling: the row the token endpoint writes, inserted through a pool like
        // the server's at the same concurrency, with no HTTP. Like the server, each insert
        // runs in its own task.
        "store-insert" => {
            let ctx = ctx.clone();
            Arc::new(move |_, _| {
                let ctx = ctx.clone();
                Box::pin(async move {
                    let row = ctx.access_token_row();
                    let pool = ctx.pool.clone();
                    matches!(
                        tokio::spawn(async move { tokens::insert(&pool, &row).await }).await,
                        Ok(Ok(()))
                    )
                })
            })
        }
        "healthz" => {
            let req = Arc::new(http::get("/healthz", ""));
            Arc::new(move |_, st| {
                let req = req.clone();
                Box::pin(async move { expect(&st, &req, 200).await.is_some() })
            })
        }
        "client-credentials" => {
            let req = Arc::new(ctx.client_credentials_request());
            let ctx = ctx.clone();
            Arc::new(move |_, st| {
                let (req, ctx) = (req.clone(), ctx.clone());
                Box::pin(async move {
                    let Some(r) = expect(&st, &req, 200).await else {
                        return false;
                    };
                    if !keep_issued {
                        return true;
                    }
                    if let Some(t) = json_field(&r.body, "access_token") {
                        if let Ok(mut v) = ctx.issued.lock() {
                            if v.len() < 2_000_000 {
                                v.push(t);
                            }
                        }
                    }
                    true
                })
            })
        }
        // RFC 9068: the same request for a client whose access tokens are ES256 JWTs.
        "client-credentials-jwt" => {
            let req = Arc::new(http::post_form(
                "/oauth2/token",
                &format!("Authorization: Basic {}\r\n", ctx.jwt_basic),
                "grant_type=client_credentials&scope=read",
            ));
            Arc::new(move |_, st| {
                let req = req.clone();
                Box::pin(async move {
                    matches!(expect(&st, &req, 200).await, Some(r) if r.body.starts_with(b"{\"access_token\":\"ey"))
                })
            })
        }
        "introspect" => {
            let req = Arc::new(http::post_form(
                "/oauth2/introspect",
                &ctx.auth_header(),
                &format!("token={}", ctx.introspect_token),
            ));
            Arc::new(move |_, st| {
                let req = req.clone();
                Box::pin(async move {
                    matches!(expect(&st, &req, 200).await, Some(r) if r.body.starts_with(b"{\"active\":true"))
                })
            })
        }
        // OpenID Connect Core 1.0 §5.3: the claims for a bearer token (one read, no hashing).
        "userinfo" => {
            let req = Arc::new(http::get(
                "/oauth2/userinfo",
                &format!("Authorization: Bearer {}\r\n", ctx.userinfo_token),
            ));
            Arc::new(move |_, st| {
                let req = req.clone();
                Box::pin(async move {
                    matches!(expect(&st, &req, 200).await, Some(r) if r.body.starts_with(b"{\"email\""))
                })
            })
        }
        "refresh" => refresh_step("/oauth2/token", ctx.auth_header()),
        "code-exchange" => code_exchange_step("/oauth2/token", ctx.auth_header()),
        "peer:client-credentials" => {
            let req = Arc::new(
                ctx.peer_for(name)?
                    .context("no peer")?
                    .client_credentials_request(),
            );
            Arc::new(move |_, st| {
                let req = req.clone();
                Box::pin(async move { expect(&st, &req, 200).await.is_some() })
            })
        }
        "peer:introspect" => {
            let peer = ctx.peer_for(name)?.context("no peer")?;
            let req = Arc::new(http::post_form(
                "/token/introspection",
                &peer.auth_header(),
                &format!("token={}", peer.introspect_token),
            ));
            Arc::new(move |_, st| {
                let req = req.clone();
                Box::pin(async move {
                    matches!(expect(&st, &req, 200).await, Some(r) if r.body.starts_with(b"{\"active\":true"))
                })
            })
        }
        "peer:refresh" => refresh_step(
            "/token",
            ctx.peer_for(name)?.context("no peer")?.auth_header(),
        ),
        "peer:code-exchange" => code_exchange_step(
            "/token",
            ctx.peer_for(name)?.context("no peer")?.auth_header(),
        ),
        "auth-code" => auth_code_flow(ctx, &ctx.client_id, &ctx.auth_header(), "read"),
        "auth-code-oidc" => oidc_flow(ctx, Algorithm::Rs256)?,
        "auth-code-oidc-es256" => oidc_flow(ctx, Algorithm::Es256)?,
        "auth-code-oidc-eddsa" => oidc_flow(ctx, Algorithm::EdDsa)?,
        "revoke" => {
            let issued = Arc::new(ctx.issued.lock().map(|v| v.clone()).unwrap_or_default());
            if issued.is_empty() {
                bail!("revoke needs the tokens from client-credentials: run that scenario first");
            }
            let next = Arc::new(AtomicUsize::new(0));
            let header = ctx.auth_header();
            Arc::new(move |_, st| {
                let (issued, next, header) = (issued.clone(), next.clone(), header.clone());
                Box::pin(async move {
                    let token = &issued[next.fetch_add(1, Ordering::Relaxed) % issued.len()];
                    expect(
                        &st,
                        &http::post_form("/oauth2/revoke", &header, &format!("token={token}")),
                        200,
                    )
                    .await
                    .is_some()
                })
            })
        }
        other => bail!(
            "unknown scenario {other:?}; known: {}, {}",
            ALL.join(", "),
            crate::soak::NAME
        ),
    };
    Ok(step)
}

/// One refresh per iteration at `path`, each worker following its own chain of rotated tokens.
fn refresh_step(path: &'static str, header: String) -> Step {
    Arc::new(move |_, st| {
        let header = header.clone();
        Box::pin(async move {
            let token = match st.lock() {
                Ok(s) => s.refresh_token.clone(),
                Err(_) => return false,
            };
            let req = http::post_form(
                path,
                &header,
                &format!("grant_type=refresh_token&refresh_token={token}"),
            );
            let Some(r) = expect(&st, &req, 200).await else {
                return false;
            };
            match json_field(&r.body, "refresh_token") {
                Some(next) => {
                    if let Ok(mut s) = st.lock() {
                        s.refresh_token = next;
                    }
                    true
                }
                None => false,
            }
        })
    })
}

/// One token exchange per iteration at `path`, of a code the worker was given beforehand: the
/// token endpoint alone, without the authorize request that `auth-code` also makes.
fn code_exchange_step(path: &'static str, header: String) -> Step {
    Arc::new(move |_, st| {
        let header = header.clone();
        Box::pin(async move {
            let Some(code) = st.lock().ok().and_then(|mut s| s.codes.pop()) else {
                // Counted as an error, so the run fails; the pause keeps the count readable.
                eprintln!("    a worker ran out of pre-minted codes: raise --codes-per-second");
                tokio::time::sleep(Duration::from_millis(100)).await;
                return false;
            };
            let body = format!(
                "grant_type=authorization_code&code={code}&redirect_uri={}",
                urlencode(REDIRECT)
            );
            matches!(
                expect(&st, &http::post_form(path, &header, &body), 200).await,
                Some(r) if r.body.windows(15).any(|w| w == b"\"refresh_token\"")
            )
        })
    })
}

/// One authorization-code flow per iteration: authorize with the live session and remembered
/// consent (303 with a code), then the token exchange.
fn auth_code_flow(ctx: &Context, client_id: &str, auth_header: &str, scope: &str) -> Step {
    let authorize = Arc::new(http::get(
        &format!(
            "/oauth2/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope={}&state=bench{}",
            urlencode(REDIRECT),
            urlencode(scope),
            // What a relying party sends with openid (OpenID Connect Core 1.0 §3.1.2.1).
            if scope.contains("openid") { "&nonce=bench-nonce" } else { "" }
        ),
        &format!("Cookie: portcullis_session={}\r\n", ctx.session_cookie),
    ));
    let header = auth_header.to_string();
    Arc::new(move |_, st| {
        let (authorize, header) = (authorize.clone(), header.clone());
        Box::pin(async move {
            let Some(r) = expect(&st, &authorize, 303).await else {
                return false;
            };
            let Some(code) = r
                .location
                .as_deref()
                .and_then(|l| l.split("code=").nth(1))
                .and_then(|c| c.split('&').next())
            else {
                return false;
            };
            let body = format!(
                "grant_type=authorization_code&code={code}&redirect_uri={}",
                urlencode(REDIRECT)
            );
            expect(&st, &http::post_form("/oauth2/token", &header, &body), 200)
                .await
                .is_some()
        })
    })
}

/// The flow with `openid` for the client whose id_tokens are signed with `alg`: the same two
/// requests, and the id_token signed at the exchange.
fn oidc_flow(ctx: &Context, alg: Algorithm) -> anyhow::Result<Step> {
    let Some((_, client_id, basic)) = ctx.oidc_clients.iter().find(|(a, ..)| *a == alg) else {
        bail!("no OpenID Connect client for {alg}");
    };
    let header = format!("Authorization: Basic {basic}\r\n");
    Ok(auth_code_flow(ctx, client_id, &header, "openid read"))
}

/// Sends `req` on the worker's connection; `Some(response)` when the status is `want`.
async fn expect(st: &Arc<Mutex<WorkerState>>, req: &[u8], want: u16) -> Option<http::Response> {
    // The connection is taken out of the state for the await and put back after.
    let mut conn = st.lock().ok()?.conn.take()?;
    let r = conn.send(req).await;
    if let Ok(mut s) = st.lock() {
        s.conn = Some(conn);
    }
    match r {
        Ok(r) if r.status == want => Some(r),
        Ok(r) => {
            eprintln!(
                "    unexpected {} (wanted {want}): {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
            None
        }
        Err(e) => {
            eprintln!("    request failed: {e}");
            None
        }
    }
}

async fn measure(
    ctx: &Arc<Context>,
    name: &str,
    states: Vec<Arc<Mutex<WorkerState>>>,
    step: Step,
) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let record_from = start + ctx.warmup;
    let stop_at = record_from + ctx.duration;
    let mut workers = Vec::new();
    for (i, st) in states.into_iter().enumerate() {
        let step = step.clone();
        workers.push(tokio::spawn(async move {
            let (mut lat, mut ok, mut errors) = (Vec::new(), 0u64, 0u64);
            while Instant::now() < stop_at {
                let t0 = Instant::now();
                let success = step(i, st.clone()).await;
                let t1 = Instant::now();
                if !success {
                    errors += 1;
                    continue;
                }
                if t0 >= record_from && t1 <= stop_at {
                    ok += 1;
                    lat.push((t1 - t0).as_micros().min(u32::MAX as u128) as u32);
                }
            }
            (lat, ok, errors)
        }));
    }
    let window = sample_window(ctx, name, record_from, stop_at).await?;
    let mut out = Outcome {
        name: name.to_string(),
        iterations: 0,
        errors: 0,
        seconds: ctx.duration.as_secs_f64(),
        latencies_us: Vec::new(),
        server_cpu_us: window.server_cpu_us,
        db_cpu_us: window.db_cpu_us,
        max_rss_kib: window.max_rss_kib,
        server_instructions: window.server_instructions,
        db_counts: window.db_counts,
        pool_queue: window.pool_queue,
    };
    for w in workers {
        let (lat, ok, errors) = w.await?;
        out.latencies_us.extend(lat);
        out.iterations += ok;
        out.errors += errors;
    }
    out.latencies_us.sort_unstable();
    Ok(out)
}

/// What the server and the database server spent in one measured window.
struct Window {
    server_cpu_us: Option<u64>,
    db_cpu_us: Option<u64>,
    max_rss_kib: Option<u64>,
    server_instructions: Option<u64>,
    db_counts: Option<DbCounts>,
    pool_queue: Option<f64>,
}

/// CPU used by the server and the database server between `from` and `to`, the server's
/// largest RSS seen meanwhile, and, where they are counted, instructions and database work.
async fn sample_window(
    ctx: &Context,
    name: &str,
    from: Instant,
    to: Instant,
) -> anyhow::Result<Window> {
    // A peer scenario measures the peer's process alone: no database, no Portcullis counters.
    let peer = ctx.peer_for(name)?;
    let (server_pids, db_pids): (&[u32], &[u32]) = match peer {
        Some(p) => (&p.pids, &[]),
        None => (&ctx.server_pids, &ctx.db_pids),
    };
    let callgrind = ctx.callgrind.as_ref().filter(|_| peer.is_none());
    let db_counter = ctx.db_counter.as_ref().filter(|_| peer.is_none());
    tokio::time::sleep_until(from.into()).await;
    if let Some(cg) = callgrind {
        cg.start_window().await?;
    }
    let db_before = match db_counter {
        Some(conn) => Some(DbCounts::read(&mut *conn.lock().await).await?),
        None => None,
    };
    let s0 = procstat::cpu_micros_sum(server_pids, ctx.ticks);
    let d0 = procstat::cpu_micros_sum(db_pids, ctx.ticks);
    let mut rss = procstat::rss_kib_max(server_pids);
    // Not under callgrind: the scrapes' own instructions would count against the scenario.
    let mut metrics = match (callgrind, peer) {
        (None, None) => http::Conn::connect(ctx.addr).await.ok(),
        _ => None,
    };
    let (mut queued, mut samples) = (0.0, 0u32);
    while Instant::now() < to {
        tokio::time::sleep(Duration::from_millis(200)).await;
        rss = rss.max(procstat::rss_kib_max(server_pids));
        if let Some(q) = pool_waiting(&mut metrics).await {
            queued += q;
            samples += 1;
        }
    }
    let s1 = procstat::cpu_micros_sum(server_pids, ctx.ticks);
    let d1 = procstat::cpu_micros_sum(db_pids, ctx.ticks);
    let db_counts = match (db_counter, db_before) {
        (Some(conn), Some(before)) => {
            let after = DbCounts::read(&mut *conn.lock().await).await?;
            Some(after.since(before, ctx.db_overhead))
        }
        _ => None,
    };
    let server_instructions = match callgrind {
        Some(cg) => Some(cg.end_window(name).await?),
        None => None,
    };
    Ok(Window {
        server_cpu_us: s0.zip(s1).map(|(a, b)| b - a),
        db_cpu_us: d0.zip(d1).map(|(a, b)| b - a),
        max_rss_kib: rss,
        server_instructions,
        db_counts,
        pool_queue: (samples > 0).then(|| queued / samples as f64),
    })
}

const METRICS_REQUEST: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n";

/// The server's `portcullis_db_pool_waiting` gauge now, over the window's own connection; None
/// (and no more tries) when metrics cannot be read.
async fn pool_waiting(conn: &mut Option<http::Conn>) -> Option<f64> {
    let response = conn.as_mut()?.send(METRICS_REQUEST).await;
    let value = response.ok().and_then(|r| {
        let text = String::from_utf8(r.body).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("portcullis_db_pool_waiting "))
            .and_then(|v| v.trim().parse().ok())
    });
    if value.is_none() {
        *conn = None;
    }
    value
}

fn json_field(body: &[u8], field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get(field)?.as_str().map(str::to_string)
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The Markdown section for this run.
pub fn report(args: &Args, results: &[Outcome]) -> String {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let backend = match args.backend {
        Backend::Sqlite => "SQLite (WAL, bundled)",
        Backend::Mysql => "MariaDB",
    };
    let title = match args.label.as_deref() {
        Some(label) if !args.target.is_empty() => format!(
            "{label}: {} running servers ({}), {backend}",
            args.target.len(),
            args.target.join(", ")
        ),
        _ if args.peer.is_some() => {
            format!("{backend} against node-oidc-provider (in memory)")
        }
        _ => backend.to_string(),
    };
    let mut s = format!(
        "## {title}, concurrency {}\n\nCommit `{commit}`, {}; {cores} cores ({cpu}); load generator on the same machine; \
         {} s measured after {} s warm-up per scenario, {} s idle between scenarios; server pool size {}.{}\n\n\
         | scenario | per s | p50 ms | p99 ms | max ms | errors | server CPU µs/iter | DB CPU µs/iter | server RSS MiB | server k-instr/iter | DB statements/iter | DB row ops/iter | pool queue | pool wait ms/iter | row lock waits/iter | row lock ms/iter |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        args.concurrency,
        chrono_free_date(),
        args.duration,
        args.warmup,
        args.settle,
        args.pool_size,
        match args.prefill {
            0 => String::new(),
            n => format!(" The `tokens` table held {n} live access tokens (`--prefill`) before the first scenario."),
        },
    );
    for r in results {
        s.push_str(&r.row());
        s.push('\n');
    }
    let rate = |n: &str| results.iter().find(|r| r.name == n).map(Outcome::rate);
    if let (Some(h), Some(st), Some(cc)) = (
        rate("healthz"),
        rate("store-insert"),
        rate("client-credentials"),
    ) {
        let ceiling = 1.0 / (1.0 / h + 1.0 / st);
        s.push_str(&format!(
            "\nCombined ceiling 1/(1/healthz + 1/store-insert) = {ceiling:.0}/s; client-credentials reaches {:.0}% of it.\n",
            100.0 * cc / ceiling
        ));
    }
    if let Some(table) = peer_table(results) {
        s.push_str(&table);
    }
    s.push_str("\n`auth-code` counts whole flows (authorize with a live session and remembered consent → 303 with code → token exchange: two requests). \
                `auth-code-oidc` is the same flow with `openid` and a nonce: the exchange also signs an id_token, RS256 (or ES256, EdDSA: the client's `id_token_signed_response_alg`). \
                `code-exchange` is the token exchange alone, of codes stored before the scenario starts. \
                `store-insert` runs in the benchmark process, so it has no server columns. DB CPU is mariadbd's, read from /proc (with `--target`: every portcullis and every mariadbd process on the machine, summed). \
                Instructions are counted only with `--callgrind` (the server under valgrind; its rates and latencies are then not comparable with a normal run); \
                DB statements and row operations are MariaDB's `Questions` and `Handler_*` counters; row lock waits and their milliseconds are `Innodb_row_lock_waits` and `Innodb_row_lock_time`. \
                Pool queue is the mean of the server's `portcullis_db_pool_waiting` gauge sampled every 200 ms; pool wait is that queue divided by the rate (Little's law), per iteration.\n");
    s
}

/// With `--peer`: each scenario on Portcullis and on the peer, and the ratio of their rates.
fn peer_table(results: &[Outcome]) -> Option<String> {
    let rows: Vec<String> = PEER_SCENARIOS
        .iter()
        .filter_map(|name| {
            let ours = results.iter().find(|r| r.name == *name)?;
            let theirs = results
                .iter()
                .find(|r| r.name.strip_prefix(PEER_PREFIX) == Some(name))?;
            Some(format!(
                "| {name} | {:.0} | {:.1} | {} | {:.0} | {:.1} | {} | {:.2}× |\n",
                ours.rate(),
                ours.percentile(0.99),
                ours.total_cpu_per_iteration(),
                theirs.rate(),
                theirs.percentile(0.99),
                theirs.total_cpu_per_iteration(),
                ours.rate() / theirs.rate(),
            ))
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    Some(format!(
        "\nPortcullis against the peer (`peer:` rows: node-oidc-provider with its in-memory adapter, \
         `bench/peer/server.js`), each scenario on Portcullis first, then on the peer; CPU is \
         server + database per iteration:\n\n\
         | scenario | Portcullis per s | p99 ms | CPU µs/iter | peer per s | p99 ms | CPU µs/iter | Portcullis / peer |\n\
         |---|---|---|---|---|---|---|---|\n{}",
        rows.concat()
    ))
}

/// Today's date from the system `date` command (no date crate for one string).
pub fn chrono_free_date() -> String {
    std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
