//! Text from elsewhere made safe for where it goes: a URL's credentials removed before the URL
//! is published (an SBOM, an annotation, a provenance record), and an image's strings escaped
//! before a terminal shows them.

use std::fmt::Write;

/// `url` without its user information (`http://ci-bot:TOKEN@host/x` → `http://host/x`), every
/// other byte as it was. A URL is `SCHEME://AUTHORITY…` (cargo's `git+https://…` included);
/// its user information is what precedes the authority's last `@`. An authority that is no
/// `HOST[:PORT]` once that is removed (`bot:tok/en@host`, where the token has a `/` or `#`)
/// loses all before the URL's last `@`. Text that is no such URL is returned as it is.
pub fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let is_scheme = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme {
        return url.to_owned();
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let at = match is_host_and_port(authority) {
        true => authority.rfind('@'),
        false => rest.rfind('@'),
    };
    match at {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// Whether `authority`, its user information removed, is `HOST` or `HOST:PORT` (an IPv6 host
/// in brackets), with a port of digits.
fn is_host_and_port(authority: &str) -> bool {
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let after_brackets = host.rsplit_once(']').map_or(host, |(_, rest)| rest);
    after_brackets
        .split_once(':')
        .is_none_or(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
}

/// `text` with every control character escaped (`\n`, `\t`, `\r`, else `\x1b` or `\u{9b}`),
/// and the bidirectional formatting characters that reorder what a terminal shows
/// (`\u{202e}`): a name read from an image can neither move the cursor, recolour the terminal,
/// nor forge a line of a report.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_owned();
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if (c as u32) < 0x80 && needs_escape(c) => {
                let _ = write!(escaped, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(escaped, "\\u{{{:x}}}", c as u32);
            }
            c => escaped.push(c),
        }
    }
    escaped
}

/// [`escape_controls`] line by line: a message's own line breaks kept, nothing else that
/// moves the cursor or recolours the terminal. For messages that may quote an image's names.
pub fn escape_lines(text: &str) -> String {
    text.split('\n')
        .map(escape_controls)
        .collect::<Vec<_>>()
        .join("\n")
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_user_information_leaves_a_url() {
        for (url, published) in [
            (
                "git+http://ci-bot:TOKEN@git.example.com:8080/privdep.git?branch=main#ab12",
                "git+http://git.example.com:8080/privdep.git?branch=main#ab12",
            ),
            (
                "https://user@git.example.com/a/b",
                "https://git.example.com/a/b",
            ),
            // Only the authority's: an `@` in the path or query stays.
            (
                "https://git.example.com/a/b@c?private_token=x@y",
                "https://git.example.com/a/b@c?private_token=x@y",
            ),
            ("https://a:b@c@host", "https://host"),
            ("https://x@host?q", "https://host?q"),
            (
                "sparse+https://token@index.example.com/",
                "sparse+https://index.example.com/",
            ),
            ("git@github.com:acme/app.git", "git@github.com:acme/app.git"),
            ("/srv/git/app.git", "/srv/git/app.git"),
            ("a b://user@host", "a b://user@host"),
            // A token with a `/` or a `#` ends the authority early: all before the last `@` goes.
            ("https://bot:tok/en@host/r", "https://host/r"),
            ("https://bot:p#ss@host/r", "https://host/r"),
            ("https://[::1]:5000/a@b", "https://[::1]:5000/a@b"),
            (
                "https://host:8080/@scope/pkg",
                "https://host:8080/@scope/pkg",
            ),
        ] {
            assert_eq!(without_userinfo(url), published, "{url}");
        }
    }

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(escape_controls("/srv/app"), "/srv/app");
        assert_eq!(escape_controls("a\nb\tc\rd"), "a\\nb\\tc\\rd");
        assert_eq!(escape_controls("\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(escape_controls("\u{9b}2J\u{7f}"), "\\u{9b}2J\\x7f");
        assert_eq!(escape_controls("abc\u{202e}fdp.exe"), "abc\\u{202e}fdp.exe");
        assert_eq!(escape_controls("café ✓"), "café ✓");
    }
}
