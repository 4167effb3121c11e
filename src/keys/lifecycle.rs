//! A key's state, read from its times alone, so every node that has the same rows agrees and
//! no job has to run at the moment a key changes state:
//!
//! - **next** from `created_at`: published in the JWKS, not used yet;
//! - **active** from `activates_at`: signs;
//! - **retired** from the moment a newer key of the same algorithm activates, or `retired_at`
//!   if earlier: still published (every token it signed can still be verified), no longer signs;
//! - **expired** `retired_publish_secs` after that: unpublished, and deleted by the janitor.
//!
//! A key retired before it activated never activates and does not retire the key before it.

use super::algorithm::Algorithm;

/// The times that decide a key's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTimes {
    pub kid: String,
    pub alg: Algorithm,
    pub activates_at: i64,
    pub retired_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Next,
    Active,
    /// No longer signs since `since`; published until `since + retired_publish_secs`.
    Retired {
        since: i64,
    },
    /// Past its publication: the janitor deletes it.
    Expired,
}

impl State {
    pub fn is_published(self) -> bool {
        !matches!(self, State::Expired)
    }

    pub fn name(self) -> &'static str {
        match self {
            State::Next => "next",
            State::Active => "active",
            State::Retired { .. } => "retired",
            State::Expired => "expired",
        }
    }
}

/// Orders keys of one algorithm by activation; the kid breaks a tie (two nodes that both made
/// a first key in the same second).
fn later(a: &KeyTimes, b: &KeyTimes) -> bool {
    (a.activates_at, &a.kid) > (b.activates_at, &b.kid)
}

/// When `key` stops signing, if it does: its own `retired_at`, or the activation of the first
/// later key of its algorithm that activates at all, whichever comes first.
pub fn retired_since(key: &KeyTimes, all: &[KeyTimes]) -> Option<i64> {
    let superseded = all
        .iter()
        .filter(|s| s.alg == key.alg && later(s, key))
        .filter(|s| s.retired_at.is_none_or(|r| r > s.activates_at))
        .map(|s| s.activates_at)
        .min();
    match (key.retired_at, superseded) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

pub fn state(key: &KeyTimes, all: &[KeyTimes], now: i64, retired_publish_secs: i64) -> State {
    match retired_since(key, all) {
        Some(since) if since <= now => {
            if since.saturating_add(retired_publish_secs) <= now {
                State::Expired
            } else {
                State::Retired { since }
            }
        }
        _ if key.activates_at > now => State::Next,
        _ => State::Active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3600;
    const PUBLISH: i64 = 24 * HOUR;

    fn key(kid: &str, alg: Algorithm, activates_at: i64, retired_at: Option<i64>) -> KeyTimes {
        KeyTimes {
            kid: kid.into(),
            alg,
            activates_at,
            retired_at,
        }
    }

    fn states(all: &[KeyTimes], now: i64) -> Vec<&'static str> {
        all.iter()
            .map(|k| state(k, all, now, PUBLISH).name())
            .collect()
    }

    #[test]
    fn a_rotation_publishes_first_then_signs_then_retires_the_old_key() {
        let all = [
            key("a", Algorithm::Rs256, 0, None),
            key("b", Algorithm::Rs256, 10 * HOUR, None),
        ];
        assert_eq!(states(&all, 9 * HOUR), ["active", "next"]);
        assert_eq!(states(&all, 10 * HOUR), ["retired", "active"]);
        assert_eq!(states(&all, 34 * HOUR - 1), ["retired", "active"]);
        assert_eq!(states(&all, 34 * HOUR), ["expired", "active"]);
    }

    #[test]
    fn algorithms_rotate_independently() {
        let all = [
            key("a", Algorithm::Rs256, 0, None),
            key("e", Algorithm::Es256, 0, None),
            key("b", Algorithm::Rs256, HOUR, None),
        ];
        assert_eq!(states(&all, 2 * HOUR), ["retired", "active", "active"]);
    }

    #[test]
    fn one_active_key_per_algorithm_even_when_two_activate_together() {
        let all = [
            key("x", Algorithm::EdDsa, 5, None),
            key("y", Algorithm::EdDsa, 5, None),
        ];
        assert_eq!(states(&all, 5), ["retired", "active"]);
    }

    #[test]
    fn a_next_key_retired_before_it_activates_never_signs_nor_retires_its_predecessor() {
        let all = [
            key("a", Algorithm::Rs256, 0, None),
            key("b", Algorithm::Rs256, 10 * HOUR, Some(HOUR)),
        ];
        assert_eq!(states(&all, 2 * HOUR), ["active", "retired"]);
        assert_eq!(states(&all, 11 * HOUR), ["active", "retired"]);
    }

    #[test]
    fn an_explicit_retirement_takes_effect_at_its_time() {
        let all = [key("a", Algorithm::Es256, 0, Some(HOUR))];
        assert_eq!(states(&all, HOUR - 1), ["active"]);
        assert_eq!(
            state(&all[0], &all, HOUR, PUBLISH),
            State::Retired { since: HOUR }
        );
        assert_eq!(states(&all, HOUR + PUBLISH), ["expired"]);
    }
}
