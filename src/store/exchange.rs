//! Exchanging a grant (an authorization code or a refresh token) for tokens, as one statement,
//! shared by the exchanges that arrive together (`group_commit`):
//!
//! ```sql
//! INSERT INTO tokens (token_hash, ..., auth_time, consumed_at, revoked_at, parent_hash)
//!     SELECT v.h, ..., NULL, NULL, CASE WHEN v.l = 1 THEN g.<key> END
//!     FROM (SELECT ? AS h, ..., ? AS g, 0 AS l      -- an exchange's first row
//!           UNION ALL SELECT ?, ..., ?, 1           -- its last row
//!           UNION ALL ...) v                        -- the other exchanges' rows
//!     JOIN <grant table> g ON g.<key> = v.g <guard>
//!
//! (guard: `AND g.revoked_at IS NULL` for a refresh token, `AND g.consumed_at IS NULL` for a
//! code; a batch with both kinds of grant has one such SELECT per kind, joined by UNION ALL)
//! ```
//!
//! The last row names the grant in `parent_hash`, whose unique index makes the exchange single
//! use: of concurrent exchanges one inserts and the others fail with a unique violation. Reading
//! the grant in the same statement ties the insert to its state: a refresh token revoked
//! meanwhile yields no rows. (InnoDB takes shared locks on the rows an `INSERT … SELECT` reads,
//! so a family revocation either commits first and this finds the grant revoked, or waits and
//! then revokes the new rows too, which carry the same family.) The statement is atomic on both
//! backends: one round trip and one commit instead of BEGIN, UPDATE, INSERT, COMMIT.
//!
//! **On Galera** that guard does not hold: Galera certifies the rows a transaction writes, not
//! the rows it reads, so a rotation on node A that only reads the grant and a family revocation
//! on node B that writes it both commit, and the revocation (which could not see A's rows)
//! leaves a live successor. There the exchange is a transaction that first claims the grant
//! (`UPDATE … SET consumed_at = now WHERE … AND consumed_at IS NULL`, the guard as above) and
//! then inserts the rows. A revocation writes the grant's row too (a family revocation
//! updates every live row of the family; withdrawing consent marks the codes consumed), so the
//! two transactions write one common row and certification lets only one of them commit; the
//! loser gets error 1213 and runs again (`retry_on_deadlock`), seeing the winner's rows. By
//! induction every token of a family was inserted by a transaction that wrote its parent, so
//! a revocation conflicts with every concurrent rotation of that family. Plain MariaDB and
//! SQLite keep the single statement: one round trip, and their locks already hold.
//!
//! In a batch each grant's rows are stored all or none, as alone. When fewer rows than planned
//! were stored, one read of the batch's first row hashes says which grants were refused; a
//! unique violation (one grant used twice) fails the whole statement, and the exchanges then
//! run one by one so each gets its own outcome. The rows come from a derived table joined once
//! to the grants because MariaDB optimizes every SELECT of a UNION on each execution: with a
//! grant lookup per row, a batch saved the commit but not the lookups (BENCHMARKS.md, session
//! 19).

use diesel::backend::Backend;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Binary, Nullable, Text};
use diesel::QueryResult;
use diesel_async::RunQueryDsl;

use super::group_commit::{each_on_failure, Job};
use super::models::{Token, TokenKind};
use super::schema::tokens;
use super::{retry_on_deadlock, Pool, StoreResult};
use crate::domain::secret::Digest;
use crate::{db_transaction, db_write};

/// The table a grant lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grant {
    /// `authorization_codes`, by `code_hash`, only while not withdrawn: revoking a grant from
    /// the account page marks the user's outstanding codes for that client consumed in the
    /// same transaction, and a redemption racing it must then store nothing.
    Code,
    /// `tokens`, by `token_hash`, only while not revoked.
    RefreshToken,
}

impl Grant {
    fn table(self) -> &'static str {
        match self {
            Grant::Code => "authorization_codes",
            Grant::RefreshToken => "tokens",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Grant::Code => "code_hash",
            Grant::RefreshToken => "token_hash",
        }
    }

    /// Further conditions on the grant row, starting with " AND".
    fn guard(self) -> &'static str {
        match self {
            Grant::Code => " AND g.consumed_at IS NULL",
            Grant::RefreshToken => " AND g.revoked_at IS NULL",
        }
    }

    /// Galera's claim: marks the grant used if it still may be (binds: now, the grant's key).
    fn claim(self) -> &'static str {
        match self {
            Grant::Code => {
                "UPDATE authorization_codes SET consumed_at = ? \
                 WHERE code_hash = ? AND consumed_at IS NULL"
            }
            // A rotated refresh token is marked used (as rows rotated before migration 0003
            // were), so on Galera it also introspects inactive.
            Grant::RefreshToken => {
                "UPDATE tokens SET consumed_at = ? \
                 WHERE token_hash = ? AND revoked_at IS NULL AND consumed_at IS NULL"
            }
        }
    }
}

/// How an exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchanged {
    /// The tokens are stored.
    Issued,
    /// Another exchange of the same grant won: nothing stored.
    AlreadyUsed,
    /// The grant is gone or was revoked meanwhile: nothing stored.
    Refused,
}

/// The columns both statements write, in the order `bind_issued` binds them.
const ISSUED_COLUMNS: &str = "INSERT INTO tokens (token_hash, kind, client_id, user_id, scope, \
    family_id, created_at, expires_at, auth_time, resource, sid, consumed_at, revoked_at, \
    parent_hash) ";

/// One exchange: the grant and the rows it issues. `rows` are stored as given except
/// `parent_hash`, which the statement sets to the grant on the last row and leaves NULL on
/// the others.
#[derive(Debug, Clone)]
pub struct Exchange {
    grant: Grant,
    grant_hash: Vec<u8>,
    rows: Vec<Token>,
}

/// Exchanges the grant `grant_hash` for `rows` (the last one names the grant as parent).
/// Nothing is stored unless `Issued`. Concurrent exchanges share a statement (`group_commit`).
pub async fn run(
    pool: &Pool,
    grant: Grant,
    grant_hash: &Digest,
    rows: Vec<Token>,
) -> StoreResult<Exchanged> {
    if rows.is_empty() {
        return Ok(Exchanged::Refused);
    }
    if pool.is_galera().await? {
        return run_claiming(pool, grant, grant_hash, rows).await;
    }
    let job = Exchange::new(grant, grant_hash, rows);
    pool.batchers().exchanges.submit(pool, job).await
}

impl Exchange {
    /// The exchange of `grant_hash` for `rows`, which must not be empty.
    pub fn new(grant: Grant, grant_hash: &Digest, rows: Vec<Token>) -> Self {
        assert!(!rows.is_empty(), "an exchange issues at least one token");
        Exchange {
            grant,
            grant_hash: grant_hash.as_bytes().to_vec(),
            rows,
        }
    }

    /// The grant's stored key.
    pub fn grant_hash(&self) -> &[u8] {
        &self.grant_hash
    }

    /// The rows it stores if issued.
    pub fn rows(&self) -> &[Token] {
        &self.rows
    }
}

impl Job for Exchange {
    type Outcome = Exchanged;
    const KIND: &'static str = "exchange";

    async fn run_batch(pool: &Pool, jobs: &[Self]) -> Vec<StoreResult<Exchanged>> {
        each_on_failure(jobs, |jobs| exchange_together(pool, jobs)).await
    }
}

/// One statement for `jobs`; a deadlock victim is run again (see `retry_on_deadlock`). A job
/// alone that loses to another exchange of its grant is `AlreadyUsed`; in a batch, that unique
/// violation fails the statement and `each_on_failure` runs the jobs one by one.
async fn exchange_together(pool: &Pool, jobs: &[Exchange]) -> StoreResult<Vec<Exchanged>> {
    use diesel::result::{DatabaseErrorKind, Error};
    let rows: usize = jobs.iter().map(|j| j.rows.len()).sum();
    retry_on_deadlock(|| async {
        db_write!(pool, |conn| {
            match ExchangeStatement::new(jobs).execute(conn).await {
                Ok(n) if n == rows => Ok(vec![Exchanged::Issued; jobs.len()]),
                Ok(_) if jobs.len() == 1 => Ok(vec![Exchanged::Refused]),
                Ok(_) => {
                    // Some grants were revoked, withdrawn or gone; a grant's rows are stored
                    // all or none, so its first row says which.
                    let firsts: Vec<&[u8]> = jobs
                        .iter()
                        .map(|j| j.rows[0].token_hash.as_slice())
                        .collect();
                    let stored: Vec<Vec<u8>> = tokens::table
                        .filter(tokens::token_hash.eq_any(firsts))
                        .select(tokens::token_hash)
                        .load(conn)
                        .await?;
                    Ok(jobs
                        .iter()
                        .map(|j| match stored.contains(&j.rows[0].token_hash) {
                            true => Exchanged::Issued,
                            false => Exchanged::Refused,
                        })
                        .collect())
                }
                Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _))
                    if jobs.len() == 1 =>
                {
                    Ok(vec![Exchanged::AlreadyUsed])
                }
                Err(e) => Err(e.into()),
            }
        })
    })
    .await
}

/// The exchange on Galera (see the module's documentation): claim the grant, then insert, in
/// one transaction. A certification conflict with another node's claim or revocation comes
/// back as a deadlock and the whole transaction runs again.
async fn run_claiming(
    pool: &Pool,
    grant: Grant,
    grant_hash: &Digest,
    mut rows: Vec<Token>,
) -> StoreResult<Exchanged> {
    let Some(last) = rows.last_mut() else {
        return Ok(Exchanged::Refused);
    };
    last.parent_hash = Some(grant_hash.as_bytes().to_vec());
    let now = last.created_at;
    let claimed = retry_on_deadlock(|| async {
        db_transaction!(pool, |conn| {
            let claimed = diesel::sql_query(grant.claim())
                .bind::<BigInt, _>(now)
                .bind::<Binary, _>(grant_hash.as_bytes())
                .execute(conn)
                .await?;
            if claimed != 1 {
                return Ok(false);
            }
            InsertRows(&rows).execute(conn).await?;
            Ok(true)
        })
    })
    .await?;
    if claimed {
        return Ok(Exchanged::Issued);
    }
    // Not claimable: used (a token names it as parent), or withdrawn, revoked or gone.
    Ok(if super::tokens::has_successor(pool, grant_hash).await? {
        Exchanged::AlreadyUsed
    } else {
        Exchanged::Refused
    })
}

/// The statement for one or more exchanges, in an order that depends only on their grants and
/// row counts, so a connection prepares one statement per mix (`group_commit::MAX_JOBS` bounds
/// how many).
struct ExchangeStatement<'a> {
    jobs: Vec<&'a Exchange>,
}

impl<'a> ExchangeStatement<'a> {
    fn new(jobs: &'a [Exchange]) -> Self {
        let mut jobs: Vec<&Exchange> = jobs.iter().collect();
        jobs.sort_by_key(|j| (j.grant, j.rows.len()));
        ExchangeStatement { jobs }
    }
}

// No static id: the SQL varies with the batch, and the statement cache keys it by its text.
impl QueryId for ExchangeStatement<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

// MySQL types the columns of a UNION from its first SELECT, and a bare `?` there is a string in
// the connection's character set: hash bytes would be re-encoded (invalid UTF-8 becomes `?`)
// before reaching the BINARY column. A cast keeps them bytes. SQLite stores what it is given.
impl QueryFragment<diesel::mysql::Mysql> for ExchangeStatement<'_> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, diesel::mysql::Mysql>) -> QueryResult<()> {
        self.walk(out, ("CAST(", " AS BINARY)"))
    }
}

impl QueryFragment<diesel::sqlite::Sqlite> for ExchangeStatement<'_> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> QueryResult<()> {
        self.walk(out, ("", ""))
    }
}

impl ExchangeStatement<'_> {
    /// The SQL, with `bytes.0` and `bytes.1` around each byte-string parameter of the SELECTs.
    fn walk<'b, DB>(&'b self, mut out: AstPass<'_, 'b, DB>, bytes: (&str, &str)) -> QueryResult<()>
    where
        DB: Backend,
        i64: ToSql<BigInt, DB>,
        Vec<u8>: ToSql<Binary, DB>,
        String: ToSql<Text, DB>,
        TokenKind: ToSql<Text, DB>,
        Option<String>: ToSql<Nullable<Text>, DB>,
        Option<i64>: ToSql<Nullable<BigInt>, DB>,
    {
        out.push_sql(ISSUED_COLUMNS);
        let mut first_group = true;
        for grant in [Grant::Code, Grant::RefreshToken] {
            let mut jobs = self.jobs.iter().filter(|j| j.grant == grant).peekable();
            if jobs.peek().is_none() {
                continue;
            }
            if !first_group {
                out.push_sql(" UNION ALL ");
            }
            first_group = false;
            out.push_sql(
                "SELECT v.h, v.k, v.c, v.u, v.s, v.f, v.ca, v.ea, v.at, v.r, v.sid, NULL, NULL, \
                 CASE WHEN v.l = 1 THEN g.",
            );
            out.push_sql(grant.key());
            out.push_sql(" END FROM (");
            let mut first_row = true;
            for job in jobs {
                for (i, row) in job.rows.iter().enumerate() {
                    let names = first_row.then_some(&NAMES);
                    out.push_sql(if first_row {
                        "SELECT "
                    } else {
                        " UNION ALL SELECT "
                    });
                    first_row = false;
                    bind_issued(&mut out, row, bytes, names)?;
                    out.push_sql(", ");
                    out.push_sql(bytes.0);
                    out.push_bind_param::<Binary, _>(&job.grant_hash)?;
                    out.push_sql(bytes.1);
                    out.push_sql(if names.is_some() { " AS g, " } else { ", " });
                    out.push_sql(if i + 1 == job.rows.len() { "1" } else { "0" });
                    if names.is_some() {
                        out.push_sql(" AS l");
                    }
                }
            }
            out.push_sql(") v JOIN ");
            out.push_sql(grant.table());
            out.push_sql(" g ON g.");
            out.push_sql(grant.key());
            out.push_sql(" = v.g");
            out.push_sql(grant.guard());
        }
        Ok(())
    }
}

/// The names the batch's derived table gives `bind_issued`'s columns.
const NAMES: [&str; 11] = ["h", "k", "c", "u", "s", "f", "ca", "ea", "at", "r", "sid"];

/// Binds a new token's columns up to `sid` (see `ISSUED_COLUMNS`), with `bytes.0` and `bytes.1`
/// around its hash.
fn bind_issued<'b, DB>(
    out: &mut AstPass<'_, 'b, DB>,
    row: &'b Token,
    bytes: (&str, &str),
    names: Option<&[&str; 11]>,
) -> QueryResult<()>
where
    DB: Backend,
    i64: ToSql<BigInt, DB>,
    Vec<u8>: ToSql<Binary, DB>,
    String: ToSql<Text, DB>,
    TokenKind: ToSql<Text, DB>,
    Option<String>: ToSql<Nullable<Text>, DB>,
    Option<i64>: ToSql<Nullable<BigInt>, DB>,
{
    let name = |out: &mut AstPass<'_, 'b, DB>, i: usize| {
        if let Some(names) = names {
            out.push_sql(" AS ");
            out.push_sql(names[i]);
        }
    };
    out.push_sql(bytes.0);
    out.push_bind_param::<Binary, _>(&row.token_hash)?;
    out.push_sql(bytes.1);
    name(out, 0);
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(&row.kind)?;
    name(out, 1);
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(&row.client_id)?;
    name(out, 2);
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Text>, _>(&row.user_id)?;
    name(out, 3);
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(&row.scope)?;
    name(out, 4);
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(&row.family_id)?;
    name(out, 5);
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&row.created_at)?;
    name(out, 6);
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&row.expires_at)?;
    name(out, 7);
    out.push_sql(", ");
    out.push_bind_param::<Nullable<BigInt>, _>(&row.auth_time)?;
    name(out, 8);
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Text>, _>(&row.resource)?;
    name(out, 9);
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Text>, _>(&row.sid)?;
    name(out, 10);
    Ok(())
}

/// Rows as given, in one multi-row `INSERT … VALUES`: one round trip whatever the row count
/// (the claim transaction's insert, and token inserts batched by `group_commit`).
pub(super) struct InsertRows<'a>(pub &'a [Token]);

// No static id: the SQL varies with the row count, and the statement cache keys it by its text.
impl QueryId for InsertRows<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB> QueryFragment<DB> for InsertRows<'_>
where
    DB: Backend,
    i64: ToSql<BigInt, DB>,
    Vec<u8>: ToSql<Binary, DB>,
    String: ToSql<Text, DB>,
    TokenKind: ToSql<Text, DB>,
    Option<String>: ToSql<Nullable<Text>, DB>,
    Option<i64>: ToSql<Nullable<BigInt>, DB>,
    Option<Vec<u8>>: ToSql<Nullable<Binary>, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(ISSUED_COLUMNS);
        out.push_sql("VALUES ");
        for (i, row) in self.0.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            bind_issued(&mut out, row, ("", ""), None)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<BigInt>, _>(&row.consumed_at)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<BigInt>, _>(&row.revoked_at)?;
            out.push_sql(", ");
            out.push_bind_param::<Nullable<Binary>, _>(&row.parent_hash)?;
            out.push_sql(")");
        }
        Ok(())
    }
}
