//! Two nodes on the suite's one database (SQLite, or MariaDB in the MariaDB pass).

use crate::cross_node::{self, Pair};
use crate::{keys, races};

fn short_client_cache(s: &mut portcullis::settings::Settings) {
    s.cache.client_ttl_secs = 1;
}

#[tokio::test]
async fn a_sign_in_on_one_node_is_served_by_the_other() {
    let p = Pair::on_one_database(|_| {}).await;
    cross_node::a_sign_in_on_one_node_is_served_by_the_other(&p).await;
}

#[tokio::test]
async fn a_rotated_secret_is_refused_by_the_other_node_within_the_cache_ttl() {
    let p = Pair::on_one_database(short_client_cache).await;
    cross_node::a_rotated_secret_is_refused_by_the_other_node_within_the_cache_ttl(&p).await;
}

#[tokio::test]
async fn one_code_redeemed_twenty_times_across_nodes_has_one_winner() {
    let p = Pair::on_one_database(|_| {}).await;
    races::one_code_redeemed_twenty_times_has_one_winner(&p).await;
}

#[tokio::test]
async fn one_refresh_token_used_twenty_times_across_nodes_has_one_winner() {
    let p = Pair::on_one_database(|_| {}).await;
    races::one_refresh_token_used_twenty_times_has_one_winner(&p).await;
}

#[tokio::test]
async fn a_rotation_racing_a_revocation_on_the_other_node_never_leaves_a_live_successor() {
    let p = Pair::on_one_database(|_| {}).await;
    races::a_rotation_racing_a_revocation_never_leaves_a_live_successor(&p, 30).await;
}

#[tokio::test]
async fn a_rotated_key_is_published_by_both_nodes_before_either_signs_with_it() {
    let p = Pair::on_one_database(keys::fast_rotation).await;
    keys::a_rotated_key_is_published_by_both_nodes_before_either_signs_with_it(&p).await;
}
