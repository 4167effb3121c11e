//! A short-lived in-process cache of clients, so the token, introspection, revocation and
//! authorization endpoints neither read the `clients` table nor parse a row on every request
//! (a client is shared as an `Arc`, parsed once when read). Safe to lose; invalidated on
//! this node when a client changes here, and bounded everywhere else by its TTL (a change made
//! by the CLI or another node shows after at most `cache.client_ttl_secs`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::domain::clients::Client;
use crate::store::{clients, Pool, StoreResult};

/// More entries than this and the cache starts over (unknown ids are never cached, so only
/// real clients fill it).
const MAX_ENTRIES: usize = 10_000;

pub struct ClientCache {
    ttl: Duration,
    entries: RwLock<HashMap<String, (Arc<Client>, Instant)>>,
}

impl ClientCache {
    pub fn new(ttl_secs: u64) -> Self {
        ClientCache {
            ttl: Duration::from_secs(ttl_secs),
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The client, and whether it came from memory (so a caller whose check failed against a
    /// cached row can look again with `fresh`).
    pub async fn get(
        &self,
        pool: &Pool,
        client_id: &str,
    ) -> StoreResult<(Option<Arc<Client>>, bool)> {
        if let Ok(map) = self.entries.read() {
            if let Some((c, at)) = map.get(client_id) {
                if at.elapsed() < self.ttl {
                    return Ok((Some(Arc::clone(c)), true));
                }
            }
        }
        Ok((self.fresh(pool, client_id).await?, false))
    }

    /// Reads the row from the database and caches it.
    pub async fn fresh(&self, pool: &Pool, client_id: &str) -> StoreResult<Option<Arc<Client>>> {
        let found = clients::find(pool, client_id).await?.map(Arc::new);
        if self.ttl.is_zero() {
            return Ok(found);
        }
        if let (Some(c), Ok(mut map)) = (&found, self.entries.write()) {
            if map.len() >= MAX_ENTRIES {
                map.clear();
            }
            map.insert(client_id.to_string(), (Arc::clone(c), Instant::now()));
        }
        Ok(found)
    }

    pub fn invalidate(&self, client_id: &str) {
        if let Ok(mut map) = self.entries.write() {
            map.remove(client_id);
        }
    }
}
