// Portable Diesel schema for both backends: only Text, BigInt, Bool, Binary and Nullable, so one
// definition matches migrations/mysql and migrations/sqlite (where VARCHAR/BINARY(32) vs
// TEXT/BLOB differ only in storage).

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        password_hash -> Text,
        disabled -> Bool,
        created_at -> BigInt,
        email -> Nullable<Text>,
        email_verified -> Bool,
        name -> Nullable<Text>,
        given_name -> Nullable<Text>,
        family_name -> Nullable<Text>,
        preferred_username -> Nullable<Text>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    clients (client_id) {
        client_id -> Text,
        secret_hash -> Nullable<Binary>,
        name -> Text,
        redirect_uris -> Text,
        grant_types -> Text,
        scope -> Text,
        token_endpoint_auth_method -> Text,
        registration_access_token_hash -> Nullable<Binary>,
        access_token_ttl -> Nullable<BigInt>,
        refresh_token_ttl -> Nullable<BigInt>,
        metadata -> Text,
        created_at -> BigInt,
        resource_server -> Bool,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Binary,
        user_id -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Binary,
        client_id -> Text,
        user_id -> Text,
        redirect_uri -> Text,
        redirect_uri_explicit -> Bool,
        scope -> Text,
        code_challenge -> Nullable<Text>,
        code_challenge_method -> Nullable<Text>,
        nonce -> Nullable<Text>,
        family_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
        auth_time -> Nullable<BigInt>,
        resource -> Nullable<Text>,
        sid -> Nullable<Text>,
    }
}

diesel::table! {
    tokens (token_hash) {
        token_hash -> Binary,
        kind -> Text,
        client_id -> Text,
        user_id -> Nullable<Text>,
        scope -> Text,
        family_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        parent_hash -> Nullable<Binary>,
        auth_time -> Nullable<BigInt>,
        resource -> Nullable<Text>,
        sid -> Nullable<Text>,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        granted_at -> BigInt,
    }
}

diesel::table! {
    throttle_events (id) {
        id -> BigInt,
        subject -> Text,
        occurred_at -> BigInt,
    }
}

diesel::table! {
    registration_tokens (token_hash) {
        token_hash -> Binary,
        uses_left -> Nullable<BigInt>,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        public_jwk -> Text,
        private_key -> Binary,
        created_at -> BigInt,
        activates_at -> BigInt,
        retired_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(authorization_codes -> clients (client_id));
diesel::joinable!(authorization_codes -> users (user_id));
diesel::joinable!(tokens -> clients (client_id));
diesel::joinable!(tokens -> users (user_id));
diesel::joinable!(consents -> clients (client_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    clients,
    sessions,
    authorization_codes,
    tokens,
    consents,
    throttle_events,
    registration_tokens,
    signing_keys,
);
