//! Exchanging a grant (an authorization code or a refresh token) for tokens, as one statement:
//!
//! ```sql
//! INSERT INTO tokens (token_hash, ..., auth_time, consumed_at, revoked_at, parent_hash)
//!     SELECT ?, ..., NULL FROM <grant table> g WHERE g.<key> = ? <guard>
//!     UNION ALL
//!     SELECT ?, ..., ?    FROM <grant table> g WHERE g.<key> = ? <guard>
//!
//! (guard: `AND g.revoked_at IS NULL` for a refresh token, `AND g.consumed_at IS NULL` for a
//! code)
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
//! The SQL is fixed for a grant kind and row count, so the query has a static id and MySQL's
//! prepared statement is reused. The statement cache is keyed by the query's type, so each
//! (grant, row count) pair is a type of its own.

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Binary, Nullable, Text};
use diesel::QueryResult;
use diesel_async::RunQueryDsl;

use super::models::{Token, TokenKind};
use super::{retry_on_deadlock, Pool, StoreResult};
use crate::domain::secret::Digest;
use crate::{db_transaction, db_write};

/// The table a grant lives in.
pub trait Grant: Send + Sync + 'static {
    const TABLE: &'static str;
    const KEY: &'static str;
    /// Further conditions on the grant row, starting with " AND".
    const EXTRA: &'static str;
    /// Galera's claim: marks the grant used if it still may be (binds: now, the grant's key).
    const CLAIM: &'static str;
}

/// `authorization_codes`, by `code_hash`, only while not withdrawn: revoking a grant from the
/// account page marks the user's outstanding codes for that client consumed in the same
/// transaction, and a redemption racing it must then store nothing.
pub struct Code;

impl Grant for Code {
    const TABLE: &'static str = "authorization_codes";
    const KEY: &'static str = "code_hash";
    const EXTRA: &'static str = " AND g.consumed_at IS NULL";
    const CLAIM: &'static str = "UPDATE authorization_codes SET consumed_at = ? \
        WHERE code_hash = ? AND consumed_at IS NULL";
}

/// `tokens`, by `token_hash`, only while not revoked.
pub struct RefreshToken;

impl Grant for RefreshToken {
    const TABLE: &'static str = "tokens";
    const KEY: &'static str = "token_hash";
    const EXTRA: &'static str = " AND g.revoked_at IS NULL";
    // A rotated refresh token is marked used (as rows rotated before migration 0003 were), so
    // on Galera it also introspects inactive.
    const CLAIM: &'static str = "UPDATE tokens SET consumed_at = ? \
        WHERE token_hash = ? AND revoked_at IS NULL AND consumed_at IS NULL";
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

/// The statement. `rows` are stored as given except `parent_hash`, which is set to the grant
/// on the last row and left NULL on the others.
struct Exchange<G: Grant, const N: usize> {
    grant_hash: Vec<u8>,
    rows: [Token; N],
    grant: PhantomData<G>,
}

/// Exchanges the grant `grant_hash` for `rows` (the last one names the grant as parent). A
/// deadlock victim is run again (see `retry_on_deadlock`); nothing is stored unless `Issued`.
pub async fn run<G: Grant, const N: usize>(
    pool: &Pool,
    grant_hash: &Digest,
    rows: [Token; N],
) -> StoreResult<Exchanged> {
    if pool.is_galera().await? {
        return run_claiming::<G, N>(pool, grant_hash, rows).await;
    }
    retry_on_deadlock(|| async {
        db_write!(pool, |conn| {
            let result = Exchange::<G, N>::new(grant_hash.as_bytes(), rows.clone())
                .execute(conn)
                .await;
            Ok(Exchange::<G, N>::outcome(result)?)
        })
    })
    .await
}

/// The exchange on Galera (see the module's documentation): claim the grant, then insert, in
/// one transaction. A certification conflict with another node's claim or revocation comes
/// back as a deadlock and the whole transaction runs again.
async fn run_claiming<G: Grant, const N: usize>(
    pool: &Pool,
    grant_hash: &Digest,
    mut rows: [Token; N],
) -> StoreResult<Exchanged> {
    let Some(last) = rows.last_mut() else {
        return Ok(Exchanged::Refused);
    };
    last.parent_hash = Some(grant_hash.as_bytes().to_vec());
    let now = last.created_at;
    let claimed = retry_on_deadlock(|| async {
        db_transaction!(pool, |conn| {
            let claimed = diesel::sql_query(G::CLAIM)
                .bind::<BigInt, _>(now)
                .bind::<Binary, _>(grant_hash.as_bytes())
                .execute(conn)
                .await?;
            if claimed != 1 {
                return Ok(false);
            }
            InsertRows(rows.clone()).execute(conn).await?;
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

impl<G: Grant, const N: usize> Exchange<G, N> {
    fn new(grant_hash: &[u8], rows: [Token; N]) -> Self {
        Exchange {
            grant_hash: grant_hash.to_vec(),
            rows,
            grant: PhantomData,
        }
    }

    /// Reads the statement's result: `Ok(affected rows)` or the database's error.
    fn outcome(result: QueryResult<usize>) -> QueryResult<Exchanged> {
        use diesel::result::{DatabaseErrorKind, Error};
        match result {
            Ok(n) if n == N => Ok(Exchanged::Issued),
            Ok(_) => Ok(Exchanged::Refused),
            Err(Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                Ok(Exchanged::AlreadyUsed)
            }
            Err(e) => Err(e),
        }
    }
}

impl<G: Grant, const N: usize> QueryId for Exchange<G, N> {
    type QueryId = Exchange<G, N>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

// MySQL types the columns of a UNION from its first SELECT, and a bare `?` there is a string in
// the connection's character set: hash bytes would be re-encoded (invalid UTF-8 becomes `?`)
// before reaching the BINARY column. A cast keeps them bytes. SQLite stores what it is given.
impl<G: Grant, const N: usize> QueryFragment<diesel::mysql::Mysql> for Exchange<G, N> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, diesel::mysql::Mysql>) -> QueryResult<()> {
        self.walk(out, ("CAST(", " AS BINARY)"))
    }
}

impl<G: Grant, const N: usize> QueryFragment<diesel::sqlite::Sqlite> for Exchange<G, N> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> QueryResult<()> {
        self.walk(out, ("", ""))
    }
}

impl<G: Grant, const N: usize> Exchange<G, N> {
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
        for (i, row) in self.rows.iter().enumerate() {
            if i > 0 {
                out.push_sql(" UNION ALL ");
            }
            out.push_sql("SELECT ");
            bind_issued(&mut out, row, bytes)?;
            out.push_sql(", NULL, NULL, ");
            if i + 1 == N {
                out.push_sql(bytes.0);
                out.push_bind_param::<Binary, _>(&self.grant_hash)?;
                out.push_sql(bytes.1);
            } else {
                out.push_sql("NULL");
            }
            out.push_sql(" FROM ");
            out.push_sql(G::TABLE);
            out.push_sql(" g WHERE g.");
            out.push_sql(G::KEY);
            out.push_sql(" = ");
            out.push_bind_param::<Binary, _>(&self.grant_hash)?;
            out.push_sql(G::EXTRA);
        }
        Ok(())
    }
}

/// Binds a new token's columns up to `sid` (see `ISSUED_COLUMNS`), with `bytes.0` and `bytes.1`
/// around its hash.
fn bind_issued<'b, DB>(
    out: &mut AstPass<'_, 'b, DB>,
    row: &'b Token,
    bytes: (&str, &str),
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
    out.push_sql(bytes.0);
    out.push_bind_param::<Binary, _>(&row.token_hash)?;
    out.push_sql(bytes.1);
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(&row.kind)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(&row.client_id)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Text>, _>(&row.user_id)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(&row.scope)?;
    out.push_sql(", ");
    out.push_bind_param::<Text, _>(&row.family_id)?;
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&row.created_at)?;
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&row.expires_at)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<BigInt>, _>(&row.auth_time)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Text>, _>(&row.resource)?;
    out.push_sql(", ");
    out.push_bind_param::<Nullable<Text>, _>(&row.sid)?;
    Ok(())
}

/// The claim transaction's insert: the rows as given (the last one names its parent), in one
/// multi-row `INSERT … VALUES`, one round trip whatever the row count.
struct InsertRows<const N: usize>([Token; N]);

impl<const N: usize> QueryId for InsertRows<N> {
    type QueryId = InsertRows<N>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<const N: usize, DB> QueryFragment<DB> for InsertRows<N>
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
            bind_issued(&mut out, row, ("", ""))?;
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
