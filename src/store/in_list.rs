//! `column IN (?, ?, …)` over 32-byte keys, for reads that serve several requests at once
//! (`group_commit`). Diesel's own `eq_any` opts its whole query out of the prepared-statement
//! cache (the list's length varies), which on MariaDB would cost a prepare and a close per
//! execution; this expression lets diesel cache the query by its SQL text, one statement per
//! list length (at most `group_commit::MAX_JOBS`).

use diesel::backend::Backend;
use diesel::expression::{is_aggregate, AppearsOnTable, Expression, ValidGrouping};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{Binary, Bool};
use diesel::QueryResult;

use crate::domain::secret::Digest;

#[derive(Debug, Clone)]
pub struct InList<C> {
    column: C,
    keys: Vec<Vec<u8>>,
}

impl<C> InList<C> {
    /// `column IN (keys)`; `keys` must not be empty.
    pub fn new(column: C, keys: impl IntoIterator<Item = Digest>) -> Self {
        let keys: Vec<Vec<u8>> = keys.into_iter().map(|k| k.as_bytes().to_vec()).collect();
        assert!(!keys.is_empty(), "IN () is not SQL");
        InList { column, keys }
    }
}

impl<C: Expression> Expression for InList<C> {
    type SqlType = Bool;
}

impl<C, QS> AppearsOnTable<QS> for InList<C> where C: AppearsOnTable<QS> {}

impl<C> ValidGrouping<()> for InList<C> {
    type IsAggregate = is_aggregate::Never;
}

// No static id: the SQL varies with the list's length, and the cache keys it by its text.
impl<C> QueryId for InList<C> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<C, DB> QueryFragment<DB> for InList<C>
where
    DB: Backend,
    C: QueryFragment<DB>,
    Vec<u8>: ToSql<Binary, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.column.walk_ast(out.reborrow())?;
        out.push_sql(" IN (");
        for (i, key) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push_sql(", ");
            }
            out.push_bind_param::<Binary, _>(key)?;
        }
        out.push_sql(")");
        Ok(())
    }
}
