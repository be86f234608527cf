//! Who may use a proxy service: GOST's authenticator (go-gost/x `auth/auth.go`),
//! a user → password table built from `auth`, `auths` and named `authers` (inline
//! `auths` and a users file).

use std::collections::HashMap;

#[derive(Clone, Default)]
pub struct Auther {
    users: HashMap<String, String>,
}

impl std::fmt::Debug for Auther {
    // Never print passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.users.keys().collect();
        names.sort();
        f.debug_struct("Auther").field("users", &names).finish()
    }
}

impl Auther {
    pub fn new() -> Auther {
        Auther::default()
    }

    pub fn add(&mut self, user: impl Into<String>, pass: impl Into<String>) {
        self.users.insert(user.into(), pass.into());
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// GOST's rule: a known user with the right password, or with no password set.
    pub fn authenticate(&self, user: &str, pass: &str) -> bool {
        match self.users.get(user) {
            Some(p) => p.is_empty() || constant_time_eq(p.as_bytes(), pass.as_bytes()),
            None => false,
        }
    }

    /// A users file as GOST reads it (`auth/auth.go` `parseAuths`): one
    /// `user password` pair per line, separated by spaces or tabs; `#` starts a
    /// comment; a line with only a name is a user without password.
    pub fn parse_users_file(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut it = line.split_whitespace();
            if let Some(user) = it.next() {
                self.add(user, it.next().unwrap_or(""));
            }
        }
    }
}

/// Compares without stopping at the first differing byte, so the time a wrong
/// password takes says nothing about how much of it was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_files() {
        let mut a = Auther::new();
        a.add("admin", "s3cret");
        a.parse_users_file("# comment\nbob  pw1\n\ncarol\t pw2 # trailing\nnopass\n");
        assert!(a.authenticate("admin", "s3cret"));
        assert!(!a.authenticate("admin", "s3cre"));
        assert!(a.authenticate("bob", "pw1"));
        assert!(a.authenticate("carol", "pw2"));
        assert!(a.authenticate("nopass", "anything"));
        assert!(!a.authenticate("mallory", ""));
        assert!(!format!("{a:?}").contains("s3cret"));
    }
}
