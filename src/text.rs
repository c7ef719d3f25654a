//! Text from elsewhere made safe for where it goes: a URL's credentials removed before the URL
//! is published (an SBOM, an annotation, a provenance record).

/// `url` without its user information (`http://ci-bot:TOKEN@host/x` → `http://host/x`), every
/// other byte as it was. A URL is `SCHEME://AUTHORITY…` (cargo's `git+https://…` included);
/// its user information is what precedes the authority's last `@`. Text that is no such URL
/// is returned as it is.
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
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
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
        ] {
            assert_eq!(without_userinfo(url), published, "{url}");
        }
    }
}
