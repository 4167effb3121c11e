//! The single-use UPDATE (`SET consumed_at = now WHERE hash = ? AND consumed_at IS NULL ...`)
//! as a query of our own. Diesel marks every `UPDATE` as unsafe to cache, so on MySQL each one
//! costs an extra prepare round trip; these have fixed SQL and a static query id, so their
//! prepared statements are reused. They run on the code and refresh hot paths.
//!
//! The statement cache is keyed by the query's type, so each target is a type of its own:
//! two targets sharing one type would share one cached statement.

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Binary};
use diesel::QueryResult;

/// Which single-use row a `Consume` updates.
pub trait Target: Send + Sync + 'static {
    const TABLE: &'static str;
    const KEY: &'static str;
    /// Further conditions, starting with " AND".
    const EXTRA: &'static str;
}

/// `authorization_codes`, by `code_hash`.
pub struct Code;

impl Target for Code {
    const TABLE: &'static str = "authorization_codes";
    const KEY: &'static str = "code_hash";
    const EXTRA: &'static str = "";
}

/// `tokens`, by `token_hash`, only while not revoked.
pub struct RefreshToken;

impl Target for RefreshToken {
    const TABLE: &'static str = "tokens";
    const KEY: &'static str = "token_hash";
    const EXTRA: &'static str = " AND revoked_at IS NULL";
}

pub struct Consume<T: Target> {
    hash: Vec<u8>,
    now: i64,
    target: PhantomData<T>,
}

impl<T: Target> Consume<T> {
    pub fn new(hash: &[u8], now: i64) -> Self {
        Consume {
            hash: hash.to_vec(),
            now,
            target: PhantomData,
        }
    }
}

impl<T: Target> QueryId for Consume<T> {
    type QueryId = Consume<T>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<T, DB> QueryFragment<DB> for Consume<T>
where
    T: Target,
    DB: Backend,
    i64: ToSql<BigInt, DB>,
    Vec<u8>: ToSql<Binary, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("UPDATE ");
        out.push_sql(T::TABLE);
        out.push_sql(" SET consumed_at = ");
        out.push_bind_param::<BigInt, _>(&self.now)?;
        out.push_sql(" WHERE ");
        out.push_sql(T::KEY);
        out.push_sql(" = ");
        out.push_bind_param::<Binary, _>(&self.hash)?;
        out.push_sql(" AND consumed_at IS NULL");
        out.push_sql(T::EXTRA);
        Ok(())
    }
}
