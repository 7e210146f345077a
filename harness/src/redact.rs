//! Redaction: the one function every secret value goes through before it leaves the process.
//!
//! A [`Redactor`] is scoped to a run. Every value the emulator stores is registered with an
//! alias that names the secret and the version's order (`<password of app:v2>`), and every
//! text that leaves rotcheck (reports, snapshots, logs, scenario files) is passed through
//! [`Redactor::redact`], which replaces the value, and its JSON-escaped, SQL-quoted and
//! URL-encoded forms, with the alias. Aliases keep the equality structure ("the password of
//! v2 is what logged in") without the values.

use crate::model::SecretValue;
use aho_corasick::{AhoCorasick, Input, MatchKind};
use std::collections::HashMap;
use base64::Engine as _;
use std::sync::{Arc, RwLock};

/// Values shorter than this are not registered: replacing every occurrence of a two-letter
/// string would make output unreadable while protecting nothing.
pub const MIN_SECRET_LEN: usize = 4;

/// JSON members of a secret whose values are secret (matched case-insensitively as substrings
/// of the member name). Other members (`username`, `host`, `engine`) stay readable.
const SECRET_FIELDS: [&str; 5] = ["password", "secret", "token", "key", "credential"];

/// A run registers values all along (every rotation makes a password) and redacts after each
/// registration. Rebuilding one automaton over every needle each time made redaction quadratic
/// in the run's length (benches/soak.rs --record), and so did a large automaton rebuilt every
/// few hundred needles. The needles are instead covered by a few automatons over consecutive
/// ranges, merged like the digits of a binary counter: a new range absorbs the ranges before it
/// that are no larger than it, so every needle is rebuilt into O(log n) automatons in all and
/// a text is searched by O(log n) of them.
#[derive(Default)]
struct Inner {
    /// (needle, alias, strong): a strong alias (a stored value) is never replaced by a weak
    /// one (a password that was only generated).
    entries: Vec<(String, String, bool)>,
    /// Where each needle is in `entries`.
    index: HashMap<String, usize>,
    /// Automatons over `entries[start..end]`, in order, ranges adjacent from 0, sizes
    /// decreasing.
    tiers: Vec<(AhoCorasick, usize, usize)>,
    random_passwords: usize,
}

impl Inner {
    /// How many entries the automatons cover.
    fn covered(&self) -> usize {
        self.tiers.last().map_or(0, |t| t.2)
    }

    /// Whether the automatons cover every entry.
    fn built(&self) -> bool {
        self.covered() == self.entries.len()
    }

    fn build(&mut self) {
        let end = self.entries.len();
        let mut start = self.covered();
        if start == end {
            return;
        }
        while let Some((_, s, e)) = self.tiers.last() {
            if end - start < e - s {
                break;
            }
            start = *s;
            self.tiers.pop();
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(self.entries[start..end].iter().map(|(n, _, _)| n.as_str()))
            .expect("needles build an automaton");
        self.tiers.push((automaton, start, end));
    }

    /// The leftmost-longest non-overlapping matches of every needle in `text`, as one
    /// automaton over all of them would find them: (start, end, entry). At each step the
    /// earliest match of the automatons wins, and at the same start the longest (a needle is
    /// in one automaton only, so there is no other tie).
    fn matches(&self, text: &str) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < text.len() {
            let mut best: Option<(usize, usize, usize)> = None;
            for (automaton, offset, _) in &self.tiers {
                if let Some(m) = automaton.find(Input::new(text).span(pos..text.len()))
                    && best.is_none_or(|(s, e, _)| m.start() < s || (m.start() == s && m.end() > e))
                {
                    best = Some((m.start(), m.end(), offset + m.pattern().as_usize()));
                }
            }
            let Some(found) = best else { break };
            out.push(found);
            pos = found.1;
        }
        out
    }

    fn replace(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut pos = 0;
        for (start, end, entry) in self.matches(text) {
            out.push_str(&text[pos..start]);
            out.push_str(&self.entries[entry].1);
            pos = end;
        }
        out.push_str(&text[pos..]);
        out
    }
}

/// The run's registry of secret values and their aliases.
#[derive(Default)]
pub struct Redactor {
    inner: RwLock<Inner>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.inner.read().map(|i| i.entries.len()).unwrap_or(0);
        write!(f, "Redactor({n} needles)")
    }
}

impl Redactor {
    /// An empty registry, shared.
    pub fn new() -> Arc<Redactor> {
        Arc::new(Redactor::default())
    }

    /// Registers the value stored in version `ordinal` of secret `secret`.
    ///
    /// A JSON object registers each secret-looking member (`<password of app:v2>`) and the
    /// whole string (`<secret string of app:v2>`); any other string registers as a whole; a
    /// binary value registers its base64 form and, if it is UTF-8, its text.
    pub fn register_value(&self, secret: &str, ordinal: u32, value: &SecretValue) {
        let at = format!("{secret}:v{ordinal}");
        match value {
            SecretValue::String(s) => {
                if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(s) {
                    for (k, v) in &map {
                        let lower = k.to_ascii_lowercase();
                        if !SECRET_FIELDS.iter().any(|f| lower.contains(f)) {
                            continue;
                        }
                        if let Some(text) = v.as_str() {
                            self.register(text, &format!("<{k} of {at}>"), true);
                        }
                    }
                }
                self.register(s, &format!("<secret string of {at}>"), true);
            }
            SecretValue::Binary(b) => {
                self.register(
                    &base64::engine::general_purpose::STANDARD.encode(b),
                    &format!("<secret binary of {at}>"),
                    true,
                );
                if let Ok(text) = std::str::from_utf8(b) {
                    self.register(text, &format!("<secret binary of {at}>"), true);
                }
            }
        }
    }

    /// Registers a password that was generated but not (yet) stored; returns its alias. If it
    /// is stored later, the stored value's alias replaces this one.
    pub fn register_random_password(&self, password: &str) -> String {
        let n = {
            let mut inner = self.inner.write().expect("redactor lock");
            inner.random_passwords += 1;
            inner.random_passwords
        };
        let alias = format!("<random password {n}>");
        self.register(password, &alias, false);
        self.alias_of(password).unwrap_or(alias)
    }

    /// Registers `needle` (and its encoded forms) under `alias`.
    pub fn register(&self, needle: &str, alias: &str, strong: bool) {
        if needle.chars().count() < MIN_SECRET_LEN {
            return;
        }
        let mut inner = self.inner.write().expect("redactor lock");
        for form in encoded_forms(needle) {
            match inner.index.get(&form).copied() {
                Some(i) => {
                    // Aliases are read at replacement time: no automaton changes.
                    let entry = &mut inner.entries[i];
                    if strong || !entry.2 {
                        entry.1 = alias.to_string();
                        entry.2 = strong;
                    }
                }
                None => {
                    let i = inner.entries.len();
                    inner.index.insert(form.clone(), i);
                    inner.entries.push((form, alias.to_string(), strong));
                }
            }
        }
    }

    /// Every registered password (each form, as registered), for audits that scan artifacts
    /// for them: never print what this returns. Whole secret strings are left out (their
    /// non-secret members, such as the engine name, would match everywhere).
    pub fn audit_passwords(&self) -> Vec<String> {
        let inner = self.inner.read().expect("redactor lock");
        inner
            .entries
            .iter()
            .filter(|(_, a, _)| !a.starts_with("<secret string"))
            .map(|(n, _, _)| n.clone())
            .collect()
    }

    /// The alias of a registered value.
    pub fn alias_of(&self, needle: &str) -> Option<String> {
        let inner = self.inner.read().expect("redactor lock");
        inner.index.get(needle).map(|&i| inner.entries[i].1.clone())
    }

    /// `text` with every registered value, in any of its forms, replaced by its alias.
    pub fn redact(&self, text: &str) -> String {
        {
            let inner = self.inner.read().expect("redactor lock");
            if inner.entries.is_empty() {
                return text.to_string();
            }
            if inner.built() {
                return inner.replace(text);
            }
        }
        let mut inner = self.inner.write().expect("redactor lock");
        inner.build();
        inner.replace(text)
    }

    /// The aliases of the registered values that occur in `text` (in any of their forms).
    pub fn aliases_in(&self, text: &str) -> std::collections::BTreeSet<String> {
        let mut found = std::collections::BTreeSet::new();
        if self.redact(text) == text {
            return found;
        }
        let inner = self.inner.read().expect("redactor lock");
        for (_, _, entry) in inner.matches(text) {
            found.insert(inner.entries[entry].1.clone());
        }
        found
    }

    /// A JSON value with every string (keys included) redacted.
    pub fn redact_json(&self, v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::String(s) => Value::String(self.redact(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.redact_json(x)).collect()),
            Value::Object(m) => {
                Value::Object(m.iter().map(|(k, x)| (self.redact(k), self.redact_json(x))).collect())
            }
            other => other.clone(),
        }
    }
}


/// The forms a value takes in the places it might leak: as is, inside a JSON string (with and
/// without `\u` escapes of non-ASCII, as Python's json.dumps writes them), inside an SQL
/// string literal, and URL-encoded (`%20` and `+` for spaces).
pub fn encoded_forms(value: &str) -> Vec<String> {
    let mut forms = vec![value.to_string()];
    let json = serde_json::to_string(value).expect("strings serialize");
    forms.push(json[1..json.len() - 1].to_string());
    let mut ascii_json = String::new();
    for c in json[1..json.len() - 1].chars() {
        if c.is_ascii() {
            ascii_json.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                ascii_json.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    forms.push(ascii_json);
    forms.push(value.replace('\'', "''"));
    forms.push(value.replace('\\', "\\\\").replace('\'', "\\'"));
    forms.push(percent_encode(value, false));
    forms.push(percent_encode(value, true));
    let mut distinct = Vec::new();
    for f in forms {
        if !distinct.contains(&f) {
            distinct.push(f);
        }
    }
    distinct
}

/// RFC 3986 percent-encoding of everything but unreserved characters; with `plus`, a space
/// becomes `+` as in form encoding.
fn percent_encode(value: &str, plus: bool) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            b' ' if plus => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tiers together replace exactly what one automaton over every needle would
    /// (leftmost-longest), across merges.
    #[test]
    fn tiered_automatons_match_one_automaton_over_everything() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let r = Redactor::default();
        let alphabet: Vec<char> = "ab'c %".chars().collect();
        let word = |rng: &mut rand::rngs::StdRng, n: usize| (0..n).map(|_| alphabet[rng.random_range(0..alphabet.len())]).collect::<String>();
        for i in 0..400 {
            let len = rng.random_range(4..9);
            let needle = word(&mut rng, len);
            r.register(&needle, &format!("<{i}>"), rng.random_bool(0.5));
            if i % 7 == 0 {
                let text = word(&mut rng, 300);
                let got = r.redact(&text);
                let inner = r.inner.read().unwrap();
                let one = AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(inner.entries.iter().map(|(n, _, _)| n.as_str())).unwrap();
                let mut want = String::new();
                one.replace_all_with(&text, &mut want, |m, _, dst| {
                    dst.push_str(&inner.entries[m.pattern().as_usize()].1);
                    true
                });
                assert_eq!(got, want, "after {i} needles ({} entries, {} tiers)", inner.entries.len(), inner.tiers.len());
            }
        }
        let inner = r.inner.read().unwrap();
        assert!(inner.tiers.len() > 2, "several tiers were exercised: {}", inner.tiers.len());
    }

    #[test]
    fn stored_json_fields_get_aliases_in_every_form() {
        let r = Redactor::new();
        let pw = "p@ss:w'rd é/1";
        let secret = serde_json::json!({"username": "app", "password": pw, "host": "localhost"}).to_string();
        r.register_value("app", 2, &SecretValue::String(secret.clone()));
        let json_escaped = serde_json::to_string(pw).unwrap();
        let texts = [
            format!("login with {pw} failed"),
            format!("payload {json_escaped}"),
            format!("ALTER ROLE app PASSWORD '{}'", pw.replace('\'', "''")),
            format!("postgres://app:{}@db/x", percent_encode(pw, false)),
            format!("{{\"password\": \"p@ss:w'rd \\u00e9/1\"}}"),
        ];
        for t in texts {
            let out = r.redact(&t);
            assert!(out.contains("<password of app:v2>"), "{t} -> {out}");
            assert!(!out.contains("w'rd") && !out.contains("w''rd") && !out.contains("w%27rd"), "{out}");
        }
        // The whole secret string has an alias of its own; plain fields stay readable.
        assert_eq!(r.redact(&secret), "<secret string of app:v2>");
        assert_eq!(r.redact("user app on localhost"), "user app on localhost");
    }

    #[test]
    fn stored_alias_wins_over_random_alias() {
        let r = Redactor::new();
        let alias = r.register_random_password("Zx9!Zx9!Zx9!");
        assert_eq!(alias, "<random password 1>");
        r.register_value("s", 3, &SecretValue::String(r#"{"password":"Zx9!Zx9!Zx9!"}"#.into()));
        assert_eq!(r.redact("Zx9!Zx9!Zx9!"), "<password of s:v3>");
        // and a later random draw of the same text does not demote it
        r.register_random_password("Zx9!Zx9!Zx9!");
        assert_eq!(r.redact("Zx9!Zx9!Zx9!"), "<password of s:v3>");
    }

    #[test]
    fn short_values_and_binaries() {
        let r = Redactor::new();
        r.register_value("s", 1, &SecretValue::String("abc".into()));
        assert_eq!(r.redact("abc"), "abc");
        r.register_value("s", 2, &SecretValue::Binary(b"binary-secret".to_vec()));
        assert_eq!(r.redact("x binary-secret"), "x <secret binary of s:v2>");
        assert_eq!(r.redact("YmluYXJ5LXNlY3JldA=="), "<secret binary of s:v2>");
    }

    #[test]
    fn aliases_in_names_what_leaked() {
        let r = Redactor::new();
        r.register_value("s", 2, &SecretValue::String(r#"{"password":"hunter2-long"}"#.into()));
        assert!(r.aliases_in("nothing here").is_empty());
        let found = r.aliases_in("pw=hunter2-long and again hunter2-long");
        assert_eq!(found.into_iter().collect::<Vec<_>>(), vec!["<password of s:v2>".to_string()]);
    }

    #[test]
    fn json_values_are_walked() {
        let r = Redactor::new();
        r.register("topsecretvalue", "<x>", true);
        let v = serde_json::json!({"a": ["topsecretvalue"], "topsecretvalue": 1});
        assert_eq!(r.redact_json(&v), serde_json::json!({"a": ["<x>"], "<x>": 1}));
    }
}
