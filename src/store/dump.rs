//! `db dump` / `db load`: every table as one versioned JSON document, so an installation can
//! move between backends (Django's dumpdata/loaddata). Secrets stay hashed. Rows are sorted by
//! primary key so the same data gives the same document on either backend. `throttle_events`
//! holds only short-lived throttle counters and is not carried over. Signing keys are carried
//! still sealed: the target needs the same `keys.encryption_key` to use them.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};

use super::models::*;
use super::schema::*;
use super::{Pool, StoreError, StoreResult};

pub const FORMAT: &str = "portcullis-dump";
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub format: String,
    pub version: u32,
    /// Newest applied migration of the source; the target must be at the same one.
    pub schema_version: String,
    pub tables: Tables,
}

#[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tables {
    pub users: Vec<User>,
    pub clients: Vec<ClientRow>,
    pub sessions: Vec<Session>,
    pub authorization_codes: Vec<AuthorizationCode>,
    pub tokens: Vec<Token>,
    pub consents: Vec<Consent>,
    pub registration_tokens: Vec<RegistrationToken>,
    pub signing_keys: Vec<SigningKeyRow>,
}

impl Tables {
    fn row_count(&self) -> usize {
        self.users.len()
            + self.clients.len()
            + self.sessions.len()
            + self.authorization_codes.len()
            + self.tokens.len()
            + self.consents.len()
            + self.registration_tokens.len()
            + self.signing_keys.len()
    }

    fn sort(&mut self) {
        self.users.sort_by(|a, b| a.id.cmp(&b.id));
        self.clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        self.sessions.sort_by(|a, b| a.id_hash.cmp(&b.id_hash));
        self.authorization_codes
            .sort_by(|a, b| a.code_hash.cmp(&b.code_hash));
        self.tokens.sort_by(|a, b| a.token_hash.cmp(&b.token_hash));
        self.consents
            .sort_by(|a, b| (&a.user_id, &a.client_id).cmp(&(&b.user_id, &b.client_id)));
        self.signing_keys.sort_by(|a, b| a.kid.cmp(&b.kid));
    }
}

pub async fn dump(pool: &Pool, schema_version: String) -> StoreResult<Document> {
    let mut tables = crate::db_read_transaction!(pool, |conn| {
        Ok(Tables {
            users: users::table.select(User::as_select()).load(conn).await?,
            clients: clients::table
                .select(ClientRow::as_select())
                .load(conn)
                .await?,
            sessions: sessions::table
                .select(Session::as_select())
                .load(conn)
                .await?,
            authorization_codes: authorization_codes::table
                .select(AuthorizationCode::as_select())
                .load(conn)
                .await?,
            tokens: tokens::table.select(Token::as_select()).load(conn).await?,
            consents: consents::table
                .select(Consent::as_select())
                .load(conn)
                .await?,
            registration_tokens: registration_tokens::table
                .select(RegistrationToken::as_select())
                .load(conn)
                .await?,
            signing_keys: signing_keys::table
                .select(SigningKeyRow::as_select())
                .load(conn)
                .await?,
        })
    })?;
    tables.sort();
    Ok(Document {
        format: FORMAT.into(),
        version: VERSION,
        schema_version,
        tables,
    })
}

/// Inserts every row in one transaction; refuses a target that holds any row. Returns the
/// number of rows loaded.
pub async fn load(pool: &Pool, doc: &Document, target_schema_version: &str) -> StoreResult<usize> {
    if doc.format != FORMAT || doc.version != VERSION {
        return Err(StoreError::Config(format!(
            "not a {FORMAT} version {VERSION} document (format {:?}, version {})",
            doc.format, doc.version
        )));
    }
    if doc.schema_version != target_schema_version {
        return Err(StoreError::Config(format!(
            "the dump is at schema version {} but the target database is at {}; run `portcullis migrate` so both match",
            doc.schema_version, target_schema_version
        )));
    }
    if row_total(pool).await? > 0 {
        return Err(not_empty());
    }
    let t = &doc.tables;
    crate::db_transaction!(pool, |conn| {
        // Parents before children, for the foreign keys.
        insert_rows!(conn, users, t.users);
        insert_rows!(conn, clients, t.clients);
        insert_rows!(conn, sessions, t.sessions);
        insert_rows!(conn, authorization_codes, t.authorization_codes);
        insert_rows!(conn, tokens, t.tokens);
        insert_rows!(conn, consents, t.consents);
        insert_rows!(conn, registration_tokens, t.registration_tokens);
        insert_rows!(conn, signing_keys, t.signing_keys);
        // Checked again inside the transaction in case a server started writing meanwhile.
        if count_rows!(conn) as usize != t.row_count() {
            return Err(not_empty());
        }
        Ok(t.row_count())
    })
}

/// Inserts rows one by one: SQLite has no multi-row INSERT with DEFAULT, which Diesel's batch
/// form needs for nullable columns.
macro_rules! insert_rows {
    ($conn:ident, $table:ident, $rows:expr) => {
        for row in &$rows {
            diesel::insert_into($table::table)
                .values(row)
                .execute($conn)
                .await?;
        }
    };
}
use insert_rows;

/// Rows in every dumped table.
macro_rules! count_rows {
    ($conn:ident) => {
        users::table.count().get_result::<i64>($conn).await?
            + clients::table.count().get_result::<i64>($conn).await?
            + sessions::table.count().get_result::<i64>($conn).await?
            + authorization_codes::table
                .count()
                .get_result::<i64>($conn)
                .await?
            + tokens::table.count().get_result::<i64>($conn).await?
            + consents::table.count().get_result::<i64>($conn).await?
            + registration_tokens::table
                .count()
                .get_result::<i64>($conn)
                .await?
            + signing_keys::table.count().get_result::<i64>($conn).await?
    };
}
use count_rows;

fn not_empty() -> StoreError {
    StoreError::Config(
        "the target database is not empty; load only into a freshly migrated database".into(),
    )
}

async fn row_total(pool: &Pool) -> StoreResult<i64> {
    crate::db_run!(pool, |conn| Ok(count_rows!(conn)))
}
