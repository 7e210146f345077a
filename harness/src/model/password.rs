//! GetRandomPassword (spec 3.7): the alphabet, the required character types, and where the
//! randomness comes from.
//!
//! Required-type characters are placed at random positions, not appended (moto appends them
//! in a fixed order, spec 6 item 23, which makes their positions predictable).

use super::error::ApiError;
use super::shapes::GetRandomPasswordInput;
use rand::{Rng, RngCore};

/// The 32 ASCII punctuation characters of spec 3.7.
pub const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";

/// The longest password the API generates.
pub const MAX_LENGTH: i64 = 4096;
/// The length when none is asked for.
pub const DEFAULT_LENGTH: i64 = 32;

/// Where passwords, ARN suffixes and generated tokens get their randomness: a CSPRNG under
/// `serve`, a seeded generator under `check` so that a case replays exactly.
pub type Entropy = Box<dyn RngCore + Send>;

/// How a test case steers the next generated password: characters forced at positions.
/// Recipes are what schedules store (never the passwords), so that a password is an input that
/// replays and shrinks, down to the one character that breaks a function (F08).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordRecipe {
    /// `(position, character)`: applied when the position exists, the request's alphabet
    /// allows the character, and every required type is still present afterwards.
    #[serde(default)]
    pub forced: Vec<(usize, char)>,
}

impl PasswordRecipe {
    /// `password` with the forced characters the policy allows.
    pub fn apply(&self, policy: &PasswordPolicy, password: String) -> String {
        let alphabet = policy.alphabet();
        let mut out: Vec<char> = password.chars().collect();
        for &(pos, ch) in &self.forced {
            if pos >= out.len() || !alphabet.contains(&ch) {
                continue;
            }
            let before = out[pos];
            out[pos] = ch;
            let keeps_types = !policy.require_each || policy.classes.iter().all(|class| out.iter().any(|c| class.contains(c)));
            if !keeps_types {
                out[pos] = before;
            }
        }
        out.into_iter().collect()
    }
}

/// What a GetRandomPassword request asks for, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Number of characters.
    pub length: usize,
    /// The character types in use, each already stripped of excluded characters; empty types
    /// are dropped.
    pub classes: Vec<Vec<char>>,
    /// Whether every type in `classes` must appear at least once.
    pub require_each: bool,
    /// Whether a space may appear (it is never required).
    pub include_space: bool,
}

impl PasswordPolicy {
    /// Validates a request into a policy.
    ///
    /// Errors: a length outside 1..=4096, an exclusion that leaves no character at all, and a
    /// length shorter than the number of required types. The messages are moto's; the exact
    /// AWS conditions and texts are UNCONFIRMED (spec 3.7). moto rejects every length under 4
    /// even when fewer types are required (spec 6 item 22); we reject only what cannot be
    /// satisfied. A type whose characters are all excluded is dropped rather than required
    /// (moto crashes there, spec 6 item 24; AWS is UNCONFIRMED).
    pub fn from_input(input: &GetRandomPasswordInput) -> Result<PasswordPolicy, ApiError> {
        let length = input.password_length.unwrap_or(DEFAULT_LENGTH);
        if !(1..=MAX_LENGTH).contains(&length) {
            return Err(ApiError::invalid_parameter(format!(
                "PasswordLength must be between 1 and {MAX_LENGTH}; got {length}."
            )));
        }
        let exclude: Vec<char> = input.exclude_characters.as_deref().unwrap_or("").chars().collect();
        let keep = |set: &str| -> Vec<char> { set.chars().filter(|c| !exclude.contains(c)).collect() };
        let mut classes = Vec::new();
        let mut push = |excluded: Option<bool>, set: &str| {
            if !excluded.unwrap_or(false) {
                let chars = keep(set);
                if !chars.is_empty() {
                    classes.push(chars);
                }
            }
        };
        push(input.exclude_lowercase, LOWER);
        push(input.exclude_uppercase, UPPER);
        push(input.exclude_numbers, DIGITS);
        push(input.exclude_punctuation, PUNCTUATION);
        let include_space = input.include_space.unwrap_or(false) && !exclude.contains(&' ');
        if classes.is_empty() && !include_space {
            return Err(ApiError::invalid_parameter(
                "The password can't be generated because every character type is excluded.",
            ));
        }
        let require_each = input.require_each_included_type.unwrap_or(true);
        if require_each && (length as usize) < classes.len() {
            return Err(ApiError::invalid_parameter(
                "Password length is too short based on the required types.",
            ));
        }
        Ok(PasswordPolicy { length: length as usize, classes, require_each, include_space })
    }

    /// Every character the password may contain.
    pub fn alphabet(&self) -> Vec<char> {
        let mut all: Vec<char> = self.classes.iter().flatten().copied().collect();
        if self.include_space {
            all.push(' ');
        }
        all
    }

    /// Draws a password: every position uniform over the alphabet, then one character of each
    /// required type written at a distinct random position.
    pub fn generate(&self, rng: &mut dyn RngCore) -> String {
        let alphabet = self.alphabet();
        let mut out: Vec<char> =
            (0..self.length).map(|_| alphabet[rng.random_range(0..alphabet.len())]).collect();
        if self.require_each {
            let mut positions: Vec<usize> = (0..self.length).collect();
            for class in &self.classes {
                let pick = rng.random_range(0..positions.len());
                let pos = positions.swap_remove(pick);
                out[pos] = class[rng.random_range(0..class.len())];
            }
        }
        out.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn policy(f: impl FnOnce(&mut GetRandomPasswordInput)) -> Result<PasswordPolicy, ApiError> {
        let mut i = GetRandomPasswordInput::default();
        f(&mut i);
        PasswordPolicy::from_input(&i)
    }

    #[test]
    fn default_is_32_chars_of_all_four_types() {
        let p = policy(|_| {}).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let pw = p.generate(&mut rng);
            assert_eq!(pw.chars().count(), 32);
            assert!(pw.chars().any(|c| c.is_ascii_lowercase()));
            assert!(pw.chars().any(|c| c.is_ascii_uppercase()));
            assert!(pw.chars().any(|c| c.is_ascii_digit()));
            assert!(pw.chars().any(|c| PUNCTUATION.contains(c)));
            assert!(!pw.contains(' '));
        }
    }

    #[test]
    fn excluded_characters_never_appear() {
        let p = policy(|i| i.exclude_characters = Some(":/@\"'\\".into())).unwrap();
        let mut rng = StdRng::seed_from_u64(2);
        for _ in 0..500 {
            let pw = p.generate(&mut rng);
            assert!(!pw.chars().any(|c| ":/@\"'\\".contains(c)), "{pw}");
        }
    }

    #[test]
    fn required_characters_are_not_at_fixed_positions() {
        // With length 4 and four required types, every position must see every type over many
        // draws; appending in a fixed order (moto) would pin the digit to one position.
        let p = policy(|i| i.password_length = Some(4)).unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let mut digit_at = [0usize; 4];
        for _ in 0..400 {
            let pw: Vec<char> = p.generate(&mut rng).chars().collect();
            for (i, c) in pw.iter().enumerate() {
                if c.is_ascii_digit() {
                    digit_at[i] += 1;
                }
            }
        }
        assert!(digit_at.iter().all(|&n| n > 40), "{digit_at:?}");
    }

    #[test]
    fn length_bounds_and_impossible_requests_are_errors() {
        assert!(policy(|i| i.password_length = Some(0)).is_err());
        assert!(policy(|i| i.password_length = Some(4097)).is_err());
        assert!(policy(|i| i.password_length = Some(3)).is_err());
        assert!(
            policy(|i| {
                i.password_length = Some(1);
                i.require_each_included_type = Some(false);
            })
            .is_ok()
        );
        let none_left = policy(|i| {
            i.exclude_lowercase = Some(true);
            i.exclude_uppercase = Some(true);
            i.exclude_numbers = Some(true);
            i.exclude_punctuation = Some(true);
        });
        assert!(none_left.is_err());
    }

    #[test]
    fn space_is_allowed_but_not_required() {
        let p = policy(|i| {
            i.include_space = Some(true);
            i.exclude_lowercase = Some(true);
            i.exclude_uppercase = Some(true);
            i.exclude_punctuation = Some(true);
            i.password_length = Some(50);
        })
        .unwrap();
        let mut rng = StdRng::seed_from_u64(4);
        let pw = p.generate(&mut rng);
        assert!(pw.chars().all(|c| c == ' ' || c.is_ascii_digit()));
        assert!(pw.contains(' '));
    }

    #[test]
    fn recipes_force_allowed_characters_and_keep_the_required_types() {
        let p = policy(|i| {
            i.password_length = Some(8);
            i.exclude_characters = Some("@".into());
        })
        .unwrap();
        let base = p.generate(&mut StdRng::seed_from_u64(5));
        let r = PasswordRecipe { forced: vec![(0, ':'), (1, '@'), (20, '\'')] };
        let out = r.apply(&p, base.clone());
        assert_eq!(out.chars().next(), Some(':'), "allowed and in range: forced");
        assert_eq!(out.chars().nth(1), base.chars().nth(1), "excluded by the policy: not forced");
        assert_eq!(out.len(), 8);
        // Forcing every position to 'a' would lose the required types: only what keeps them.
        let all_a = PasswordRecipe { forced: (0..8).map(|i| (i, 'a')).collect() };
        let out = all_a.apply(&p, base);
        assert!(out.chars().any(|c| c.is_ascii_uppercase()) && out.chars().any(|c| c.is_ascii_digit()));
    }

    #[test]
    fn same_seed_same_password() {
        let p = policy(|_| {}).unwrap();
        let a = p.generate(&mut StdRng::seed_from_u64(9));
        let b = p.generate(&mut StdRng::seed_from_u64(9));
        assert_eq!(a, b);
    }
}
