//! The HTML pages people see: login, consent, account and error. Everything that comes from a
//! request or a client's registration is escaped: it is untrusted text, never markup.

use crate::domain::scope::Scope;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#222}\
form{display:grid;gap:.75rem}input{padding:.5rem;font-size:1rem}button{padding:.6rem;font-size:1rem;cursor:pointer}\
.error{color:#a00}.muted{color:#666;font-size:.9rem}ul{padding-left:1.2rem}";

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Portcullis</title><style>{STYLE}</style></head><body>{body}</body></html>",
        escape(title)
    )
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        escape(name),
        escape(value)
    )
}

pub fn login(error: Option<&str>, return_to: &str, csrf: &str) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    page(
        "Sign in",
        &format!(
            "<h1>Sign in</h1>{error}<form method=\"post\" action=\"/login\">\
             <label>Username <input name=\"username\" autocomplete=\"username\" required autofocus></label>\
             <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
             {}{}<button type=\"submit\">Sign in</button></form>",
            hidden("return_to", return_to),
            hidden("csrf_token", csrf),
        ),
    )
}

pub struct ConsentView<'a> {
    pub username: &'a str,
    pub client_name: &'a str,
    pub client_uri: Option<&'a str>,
    pub scope: &'a Scope,
    pub hidden: Vec<(&'a str, &'a str)>,
    pub csrf: &'a str,
}

pub fn consent(v: &ConsentView<'_>) -> String {
    let scopes = if v.scope.is_empty() {
        "<p>It asks for no specific permissions.</p>".to_string()
    } else {
        let items: String = v
            .scope
            .iter()
            .map(|s| format!("<li><code>{}</code></li>", escape(s)))
            .collect();
        format!("<p>It asks for:</p><ul>{items}</ul>")
    };
    let client_uri = v
        .client_uri
        .map(|u| {
            format!(
                "<p class=\"muted\">Its website, as it describes itself: {}</p>",
                escape(u)
            )
        })
        .unwrap_or_default();
    let fields: String = v.hidden.iter().map(|(k, val)| hidden(k, val)).collect();
    page(
        "Allow access?",
        &format!(
            "<h1>Allow access?</h1><p>Signed in as <strong>{}</strong>.</p>\
             <p>The application <strong>{}</strong> wants to access your account.</p>{client_uri}{scopes}\
             <form method=\"post\" action=\"/oauth2/authorize\">{fields}{}\
             <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
             <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button></form>",
            escape(v.username),
            escape(v.client_name),
            hidden("csrf_token", v.csrf),
        ),
    )
}

pub fn account(username: &str, csrf: &str) -> String {
    page(
        "Signed in",
        &format!(
            "<h1>Signed in</h1><p>You are signed in as <strong>{}</strong>.</p>\
             <form method=\"post\" action=\"/logout\">{}<button type=\"submit\">Sign out</button></form>",
            escape(username),
            hidden("csrf_token", csrf),
        ),
    )
}

pub fn error(message: &str) -> String {
    page(
        "Error",
        &format!(
            "<h1>Something is wrong with this request</h1><p class=\"error\">{}</p>",
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>\"x\"&'"),
            "&lt;script&gt;&quot;x&quot;&amp;&#x27;"
        );
    }
}
