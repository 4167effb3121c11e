//! JOSE signing keys (issue 11), shared by every node through the `signing_keys` table.
//!
//! - `algorithm`: RS256, ES256 and EdDSA keys: generation, JWKs, signing (ring).
//! - `kek`: the key-encryption key that seals private keys at rest.
//! - `lifecycle`: next → active → retired → expired, read from each key's times.
//! - `jws`: compact JWS (RFC 7515) signing.
//!
//! `KeyRing` is one node's view: every key decrypted once and kept in memory, re-read every
//! `keys.refresh_secs` so keys made on another node or by the CLI are picked up without a
//! restart. States follow the clock, not the re-read: a key published ahead activates on
//! every node at the same second. Signing needs no database connection.

pub mod algorithm;
pub mod jws;
pub mod kek;
pub mod lifecycle;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde_json::{json, Value};

pub use algorithm::{Algorithm, PrivateKey};
pub use kek::Kek;
use lifecycle::{KeyTimes, State};

use crate::store::models::SigningKeyRow;
use crate::store::{signing_keys, Pool, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Kek(String),
    #[error("cannot generate a key: {0}")]
    Generate(String),
    #[error("not a usable private key: {0}")]
    BadKey(String),
    #[error("signing with {0} failed")]
    Sign(Algorithm),
    #[error("signing key {kid} does not open with keys.encryption_key: the key-encryption key differs from the one that sealed it (every node must have the same), or the row was altered")]
    Unopenable { kid: String },
    #[error("signing key {kid}: {reason}")]
    Corrupt { kid: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One loaded key and the times that decide its state.
struct Entry {
    times: KeyTimes,
    key: Arc<PrivateKey>,
}

pub struct KeyRing {
    pool: Pool,
    kek: Kek,
    retired_publish_secs: i64,
    entries: RwLock<Arc<Vec<Entry>>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").finish_non_exhaustive()
    }
}

/// A key as `keys list` shows it.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: Algorithm,
    pub state: State,
    pub created_at: i64,
    pub activates_at: i64,
}

impl KeyRing {
    /// Loads every key (a key that does not open is an error: a wrong `keys.encryption_key`
    /// must stop the server, not silently sign with fewer keys), then makes an active key for
    /// each algorithm that has none, so a new installation signs from its first start.
    pub async fn open(
        pool: Pool,
        kek: Kek,
        retired_publish_secs: i64,
        now: i64,
    ) -> Result<Self, KeyError> {
        let ring = Self {
            pool,
            kek,
            retired_publish_secs,
            entries: RwLock::new(Arc::new(Vec::new())),
        };
        ring.refresh().await?;
        let mut made = false;
        for alg in Algorithm::ALL {
            if ring.signing_key(alg, now).is_none() {
                let kid = create(&ring.pool, &ring.kek, alg, now, now).await?;
                tracing::info!(%kid, %alg, "made a signing key (none was active)");
                made = true;
            }
        }
        if made {
            ring.refresh().await?;
        }
        Ok(ring)
    }

    /// Reads the table again: new keys are opened, gone ones dropped, times updated. On an
    /// error the keys in memory stay as they were.
    pub async fn refresh(&self) -> Result<(), KeyError> {
        let rows = signing_keys::all(&self.pool).await?;
        let known: HashMap<String, Arc<PrivateKey>> = self
            .snapshot()
            .iter()
            .map(|e| (e.times.kid.clone(), e.key.clone()))
            .collect();
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let key = match known.get(&row.kid) {
                Some(key) => key.clone(),
                None => Arc::new(open_row(&self.kek, &row)?),
            };
            entries.push(Entry {
                times: KeyTimes {
                    kid: row.kid,
                    alg: key.alg(),
                    activates_at: row.activates_at,
                    retired_at: row.retired_at,
                },
                key,
            });
        }
        *self.entries.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(entries);
        Ok(())
    }

    fn snapshot(&self) -> Arc<Vec<Entry>> {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The key that signs `alg` at `now`.
    pub fn signing_key(&self, alg: Algorithm, now: i64) -> Option<Arc<PrivateKey>> {
        let entries = self.snapshot();
        let times: Vec<KeyTimes> = entries.iter().map(|e| e.times.clone()).collect();
        entries
            .iter()
            .filter(|e| e.times.alg == alg)
            .find(|e| {
                lifecycle::state(&e.times, &times, now, self.retired_publish_secs) == State::Active
            })
            .map(|e| e.key.clone())
    }

    /// A published key by id, whatever its state (to verify our own tokens, old ones too).
    pub fn published_key(&self, kid: &str, now: i64) -> Option<Arc<PrivateKey>> {
        let entries = self.snapshot();
        let times: Vec<KeyTimes> = entries.iter().map(|e| e.times.clone()).collect();
        entries
            .iter()
            .find(|e| e.times.kid == kid)
            .filter(|e| {
                lifecycle::state(&e.times, &times, now, self.retired_publish_secs).is_published()
            })
            .map(|e| e.key.clone())
    }

    /// The JWK Set (RFC 7517 §5) at `now`: next, active and retired keys, newest first.
    pub fn jwks(&self, now: i64) -> Value {
        let entries = self.snapshot();
        let times: Vec<KeyTimes> = entries.iter().map(|e| e.times.clone()).collect();
        let keys: Vec<&Value> = entries
            .iter()
            .rev()
            .filter(|e| {
                lifecycle::state(&e.times, &times, now, self.retired_publish_secs).is_published()
            })
            .map(|e| e.key.public_jwk())
            .collect();
        json!({ "keys": keys })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn kek(&self) -> &Kek {
        &self.kek
    }
}

/// What seals a key binds it to: its row.
fn associated_data(kid: &str, alg: Algorithm) -> Vec<u8> {
    format!("portcullis signing key {kid} {alg}").into_bytes()
}

fn open_row(kek: &Kek, row: &SigningKeyRow) -> Result<PrivateKey, KeyError> {
    let corrupt = |reason: String| KeyError::Corrupt {
        kid: row.kid.clone(),
        reason,
    };
    let alg = Algorithm::from_name(&row.alg)
        .ok_or_else(|| corrupt(format!("unknown algorithm {:?}", row.alg)))?;
    let der = kek
        .open(&associated_data(&row.kid, alg), &row.private_key)
        .ok_or_else(|| KeyError::Unopenable {
            kid: row.kid.clone(),
        })?;
    let key = PrivateKey::from_pkcs8(alg, &der).map_err(|e| corrupt(e.to_string()))?;
    if key.kid() != row.kid {
        return Err(corrupt(format!("its key's thumbprint is {}", key.kid())));
    }
    Ok(key)
}

/// Makes a key of `alg` that activates at `activates_at` and stores it sealed; its kid.
pub async fn create(
    pool: &Pool,
    kek: &Kek,
    alg: Algorithm,
    activates_at: i64,
    now: i64,
) -> Result<String, KeyError> {
    // RSA's prime search takes up to seconds: off the async threads.
    let der = tokio::task::spawn_blocking(move || alg.generate())
        .await
        .map_err(|e| KeyError::Generate(e.to_string()))??;
    let key = PrivateKey::from_pkcs8(alg, &der)?;
    let row = SigningKeyRow {
        kid: key.kid().to_string(),
        alg: alg.name().to_string(),
        public_jwk: key.public_jwk().to_string(),
        private_key: kek.seal(&associated_data(key.kid(), alg), &der)?,
        created_at: now,
        activates_at,
        retired_at: None,
    };
    signing_keys::insert(pool, &row).await?;
    Ok(row.kid)
}

/// The lifecycle times of stored rows (a row of an unknown algorithm has none).
fn times_of(rows: &[SigningKeyRow]) -> Vec<KeyTimes> {
    rows.iter()
        .filter_map(|r| {
            Some(KeyTimes {
                kid: r.kid.clone(),
                alg: Algorithm::from_name(&r.alg)?,
                activates_at: r.activates_at,
                retired_at: r.retired_at,
            })
        })
        .collect()
}

/// Every stored key and its state at `now` (`keys list`; needs no key-encryption key).
pub fn describe(rows: &[SigningKeyRow], now: i64, retired_publish_secs: i64) -> Vec<KeyInfo> {
    let times = times_of(rows);
    rows.iter()
        .filter_map(|row| {
            let t = times.iter().find(|t| t.kid == row.kid)?;
            Some(KeyInfo {
                kid: t.kid.clone(),
                alg: t.alg,
                state: lifecycle::state(t, &times, now, retired_publish_secs),
                created_at: row.created_at,
                activates_at: t.activates_at,
            })
        })
        .collect()
}

/// Makes the key that replaces `alg`'s current one; its kid and when it signs from.
///
/// Scheduled (`at_once` false): it signs from `now + publish_ahead_secs`, or the second after
/// the latest key of `alg` activates if that is later, so the newest rotation is the one that
/// ends up signing. At once: it signs from `now`, and the keys of `alg` that sign now are
/// retired at `now` (a key activated in this same second would otherwise tie with it).
pub async fn rotate(
    pool: &Pool,
    kek: &Kek,
    alg: Algorithm,
    at_once: bool,
    publish_ahead_secs: i64,
    now: i64,
) -> Result<(String, i64), KeyError> {
    let rows = signing_keys::all(pool).await?;
    if at_once {
        let kid = create(pool, kek, alg, now, now).await?;
        for key in describe(&rows, now, i64::MAX) {
            if key.alg == alg && key.state == State::Active {
                signing_keys::retire(pool, &key.kid, now).await?;
            }
        }
        return Ok((kid, now));
    }
    let latest = rows
        .iter()
        .filter(|r| r.alg == alg.name())
        .map(|r| r.activates_at)
        .max();
    let wanted = now + publish_ahead_secs;
    let activates_at = latest.map_or(wanted, |l| wanted.max(l + 1));
    Ok((
        create(pool, kek, alg, activates_at, now).await?,
        activates_at,
    ))
}

/// Keys that stopped signing before `cutoff` (now less `keys.retired_publish_secs`): their
/// publication is over and the janitor deletes them.
pub fn due_for_deletion(rows: &[SigningKeyRow], cutoff: i64) -> Vec<String> {
    let times = times_of(rows);
    times
        .iter()
        .filter(|t| lifecycle::retired_since(t, &times).is_some_and(|since| since < cutoff))
        .map(|t| t.kid.clone())
        .collect()
}

/// The keys of each algorithm that are due to be replaced at `now`: its active key activated
/// `rotate_after_secs` ago less the publication ahead (so the successor signs when the active
/// key is `rotate_after_secs` old), and no successor is scheduled yet.
pub fn due_for_rotation(
    rows: &[SigningKeyRow],
    now: i64,
    rotate_after_secs: i64,
    publish_ahead_secs: i64,
) -> Vec<Algorithm> {
    let keys = describe(rows, now, i64::MAX);
    Algorithm::ALL
        .into_iter()
        .filter(|alg| !keys.iter().any(|k| k.alg == *alg && k.state == State::Next))
        .filter(|alg| {
            keys.iter().any(|k| {
                k.alg == *alg
                    && k.state == State::Active
                    && k.activates_at + rotate_after_secs - publish_ahead_secs <= now
            })
        })
        .collect()
}

/// Schedules the successor of every key due for rotation (`keys.rotate_after_secs`; 0: never),
/// as `keys rotate` would. Runs on every node; two nodes that both find a key due in the same
/// moment make two successors, the later of which signs a second after the first (`rotate`):
/// both were published ahead, so nothing fails verification.
pub async fn rotate_when_due(
    ring: &KeyRing,
    rotate_after_secs: i64,
    publish_ahead_secs: i64,
    now: i64,
) -> Result<(), KeyError> {
    if rotate_after_secs <= 0 {
        return Ok(());
    }
    let rows = signing_keys::all(ring.pool()).await?;
    for alg in due_for_rotation(&rows, now, rotate_after_secs, publish_ahead_secs) {
        let (kid, from) =
            rotate(ring.pool(), ring.kek(), alg, false, publish_ahead_secs, now).await?;
        tracing::info!(%kid, %alg, signs_from = from, "signing key rotated on schedule (keys.rotate_after_secs)");
        ring.refresh().await?;
    }
    Ok(())
}

/// Re-reads the keys every `interval` until `stop` changes, and rotates those due.
pub async fn refresh_periodically(
    ring: Arc<KeyRing>,
    interval: std::time::Duration,
    schedule: (i64, i64),
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let (rotate_after_secs, publish_ahead_secs) = schedule;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                if let Err(e) = ring.refresh().await {
                    tracing::warn!(error = %e, "cannot re-read the signing keys; keeping the ones in memory");
                }
                if let Err(e) = rotate_when_due(&ring, rotate_after_secs, publish_ahead_secs, crate::now()).await {
                    tracing::warn!(error = %e, "cannot rotate a signing key that is due; trying again later");
                }
            }
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kid: &str, alg: Algorithm, activates_at: i64) -> SigningKeyRow {
        SigningKeyRow {
            kid: kid.into(),
            alg: alg.name().into(),
            public_jwk: String::new(),
            private_key: Vec::new(),
            created_at: activates_at,
            activates_at,
            retired_at: None,
        }
    }

    #[test]
    fn a_key_is_due_for_rotation_publish_ahead_before_its_age_limit() {
        let (every, ahead) = (100, 10);
        let rows = vec![
            row("rs", Algorithm::Rs256, 0),
            row("es", Algorithm::Es256, 50),
            row("ed", Algorithm::EdDsa, 0),
            // EdDSA's successor is already scheduled.
            row("ed2", Algorithm::EdDsa, 200),
        ];
        assert_eq!(due_for_rotation(&rows, 89, every, ahead), vec![]);
        assert_eq!(
            due_for_rotation(&rows, 90, every, ahead),
            vec![Algorithm::Rs256]
        );
        assert_eq!(
            due_for_rotation(&rows, 140, every, ahead),
            vec![Algorithm::Rs256, Algorithm::Es256]
        );
    }
}
