//! AWS Signature Version 4 verification of the emulator's HTTP requests.
//!
//! A function that signs with credentials other than the ones it was given (hard-coded keys, a
//! developer's profile, a stale `~/.aws/credentials`) works against moto and LocalStack and
//! fails on AWS; verifying signatures makes it fail here too, with a message that says why.
//!
//! What is checked, in AWS's order: an `Authorization: AWS4-HMAC-SHA256 Credential=.., SignedHeaders=..,
//! Signature=..` header and an `X-Amz-Date` header are present and well formed
//! (`IncompleteSignature` otherwise); the access key id is one that was issued
//! (`UnrecognizedClientException`); the credential scope's date is the day of `X-Amz-Date`, an
//! `X-Amz-Content-Sha256` header (when sent) is the hash of the body, and the signature is the one
//! the issued secret key gives for this method, path, query, signed headers and body
//! (`InvalidSignatureException`). The comparison runs in constant time.
//!
//! Deliberately not checked:
//! - **Clock skew.** AWS refuses a request whose `X-Amz-Date` is more than 5 minutes from its
//!   clock. The emulator's model runs on an injected clock (tests and replays use a fixed one),
//!   so there is no "now" to compare against that is right for every caller, and a replayed
//!   request on loopback is not a threat this emulator defends against.
//! - **Region and service of the scope.** The scope is taken as the client signed it: a local
//!   endpoint has no region of its own to insist on (`serve --region` only names ARNs).
//! - **Session tokens.** An `X-Amz-Security-Token` is covered by the signature when the client
//!   signs it, but its value is not checked: the emulator issues no temporary credentials.
//! - **Presigned URLs and SigV4a.** Secrets Manager clients send neither; such a request is
//!   `IncompleteSignature`.
//!
//! HMAC-SHA256 is written out here (RFC 2104, a dozen lines) on the workspace's `sha2`: the
//! `hmac` release already in the lock file is built on a newer `digest` than that `sha2`.

use crate::model::{ApiError, ErrorKind};
use hyper::{HeaderMap, Method, Uri};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt::Write as _;

/// The one signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// What every rejection adds when nobody set anything better: how a library user gets past it.
pub const DEFAULT_ADVICE: &str =
    "Sign with credentials registered with Emulator::add_credentials, or turn checking off with Emulator::verify_signatures(false).";

/// What every rejection adds under `rotcheck check`, where the function is given its credentials.
pub const CHECK_ADVICE: &str = "rotcheck check gives each function process its own credentials in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; the function must sign with those (not with hard-coded keys, a profile, or a credentials file).";

/// The credentials the emulator accepts, and whether it checks at all.
///
/// Off by default: the library's tests and examples sign with whatever key id names the caller.
/// `rotcheck check` and `rotcheck serve` turn it on. Secret keys never leave this struct: not in
/// messages, not in logs, not in `Debug`.
pub struct SignatureCheck {
    enabled: bool,
    /// Access key id -> secret access key.
    keys: HashMap<String, String>,
    /// Appended to every rejection's message: which credentials are accepted, and how to stop
    /// checking.
    advice: String,
}

impl Default for SignatureCheck {
    fn default() -> SignatureCheck {
        SignatureCheck { enabled: false, keys: HashMap::new(), advice: DEFAULT_ADVICE.into() }
    }
}

impl std::fmt::Debug for SignatureCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("SignatureCheck").field("enabled", &self.enabled).field("access_key_ids", &ids).finish_non_exhaustive()
    }
}

impl SignatureCheck {
    /// Turns checking on or off.
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    /// Whether requests are checked.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Accepts `access_key_id` signed with `secret_access_key` (replacing an earlier secret for
    /// the same id).
    pub fn add(&mut self, access_key_id: impl Into<String>, secret_access_key: impl Into<String>) {
        self.keys.insert(access_key_id.into(), secret_access_key.into());
    }

    /// Sets the sentence appended to every rejection. It must not contain a secret key.
    pub fn set_advice(&mut self, advice: impl Into<String>) {
        self.advice = advice.into();
    }

    /// Checks a request's signature; `Ok` when checking is off.
    pub fn verify(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let incomplete = |what: String| Err(self.reject(ErrorKind::IncompleteSignature, what));
        let Some(auth) = headers.get(hyper::header::AUTHORIZATION) else {
            return incomplete("The request is not signed: it has no Authorization header (AWS Signature Version 4).".into());
        };
        let auth = match auth.to_str().map_err(|_| "it is not ASCII".to_string()).and_then(Authorization::parse) {
            Ok(a) => a,
            Err(why) => return incomplete(format!("The Authorization header is not a Signature Version 4 header: {why}.")),
        };
        let Some(amz_date) = headers.get("x-amz-date").and_then(|v| v.to_str().ok()) else {
            return incomplete("Authorization header requires existence of an 'X-Amz-Date' header.".into());
        };
        if !is_amz_date(amz_date) {
            return incomplete(format!("X-Amz-Date {:?} is not of the form YYYYMMDDTHHMMSSZ.", truncate(amz_date, 40)));
        }
        let Some(secret) = self.keys.get(auth.key_id) else {
            return Err(self.reject(
                ErrorKind::UnrecognizedClientException,
                format!("The security token included in the request is invalid (access key id {:?} is unknown).", truncate(auth.key_id, 64)),
            ));
        };
        let mismatch = |detail: &str| {
            Err(self.reject(
                ErrorKind::InvalidSignatureException,
                format!("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.{detail}"),
            ))
        };
        if auth.date != &amz_date[..8] {
            return mismatch(&format!(" The date of the credential scope, {}, is not the date of X-Amz-Date, {amz_date}.", auth.date));
        }
        let payload_hash = hex(&Sha256::digest(body));
        if let Some(declared) = headers.get("x-amz-content-sha256")
            && declared.as_bytes() != payload_hash.as_bytes()
        {
            return mismatch(" X-Amz-Content-Sha256 is not the SHA-256 of the request body.");
        }
        for name in &auth.signed_headers {
            if headers.get(*name).is_none() {
                return mismatch(&format!(" The signed header {name:?} is not in the request."));
            }
        }
        let canonical = canonical_request(method, uri, headers, &auth.signed_headers, &payload_hash);
        let to_sign = string_to_sign(amz_date, &auth.scope(), &canonical);
        let expected = hex(&hmac_sha256(&signing_key(secret, auth.date, auth.region, auth.service), to_sign.as_bytes()));
        if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
            Ok(())
        } else {
            // The string to sign holds no secret (a date, the scope, a hash), so it may be logged.
            tracing::debug!(key = auth.key_id, string_to_sign = %to_sign, "signature mismatch");
            mismatch("")
        }
    }

    fn reject(&self, kind: ErrorKind, what: String) -> ApiError {
        ApiError::new(kind, format!("{what} {}", self.advice))
    }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// The access key id.
    pub key_id: &'a str,
    /// The scope's date, `YYYYMMDD`.
    pub date: &'a str,
    /// The scope's region.
    pub region: &'a str,
    /// The scope's service.
    pub service: &'a str,
    /// Lower-case header names, in the order signed.
    pub signed_headers: Vec<&'a str>,
    /// Lower-case hex.
    pub signature: &'a str,
}

impl<'a> Authorization<'a> {
    /// Parses the header's value; the error says what is wrong, in a few words.
    pub fn parse(value: &'a str) -> Result<Authorization<'a>, String> {
        let value = value.trim();
        let Some(rest) = value.strip_prefix(ALGORITHM).filter(|r| r.starts_with(' ')) else {
            let algorithm = value.split_whitespace().next().unwrap_or("");
            return Err(format!("the algorithm is {:?}, not {ALGORITHM}", truncate(algorithm, 40)));
        };
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (k, v) = part.trim().split_once('=').ok_or_else(|| format!("{:?} is not NAME=VALUE", truncate(part.trim(), 40)))?;
            match k {
                "Credential" => credential = Some(v),
                "SignedHeaders" => signed = Some(v),
                "Signature" => signature = Some(v),
                _ => {}
            }
        }
        let credential = credential.ok_or("it has no Credential parameter")?;
        let signed = signed.ok_or("it has no SignedHeaders parameter")?;
        let signature = signature.ok_or("it has no Signature parameter")?;
        let scope: Vec<&str> = credential.split('/').collect();
        let [key_id, date, region, service, "aws4_request"] = scope[..] else {
            return Err("Credential is not ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request".into());
        };
        if key_id.is_empty() || region.is_empty() || service.is_empty() || date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err("Credential is not ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request".into());
        }
        let signed_headers: Vec<&str> = signed.split(';').collect();
        if signed_headers.iter().any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase())) {
            return Err("SignedHeaders is not a ;-separated list of lower-case header names".into());
        }
        if !signed_headers.contains(&"host") {
            return Err("'Host' must be a signed header".into());
        }
        Ok(Authorization { key_id, date, region, service, signed_headers, signature })
    }

    /// `date/region/service/aws4_request`.
    pub fn scope(&self) -> String {
        format!("{}/{}/{}/aws4_request", self.date, self.region, self.service)
    }
}

/// The canonical request: method, canonical URI, canonical query, canonical headers (the signed
/// ones), signed header names, payload hash; one per line.
pub fn canonical_request(method: &Method, uri: &Uri, headers: &HeaderMap, signed: &[&str], payload_hash: &str) -> String {
    let mut out = String::new();
    out.push_str(method.as_str());
    out.push('\n');
    out.push_str(&canonical_uri(uri.path()));
    out.push('\n');
    out.push_str(&canonical_query(uri.query().unwrap_or("")));
    out.push('\n');
    for name in signed {
        let values: Vec<String> = headers.get_all(*name).iter().map(|v| collapse_spaces(&String::from_utf8_lossy(v.as_bytes()))).collect();
        let _ = writeln!(out, "{name}:{}", values.join(","));
    }
    out.push('\n');
    out.push_str(&signed.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

/// `AWS4-HMAC-SHA256`, the request's date, the scope, the hash of the canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex(&Sha256::digest(canonical_request.as_bytes())))
}

/// The signing key: the secret key HMAC-chained through date, region, service and `aws4_request`.
pub fn signing_key(secret_access_key: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k = hmac_sha256(format!("AWS4{secret_access_key}").as_bytes(), date.as_bytes());
    let k = hmac_sha256(&k, region.as_bytes());
    let k = hmac_sha256(&k, service.as_bytes());
    hmac_sha256(&k, b"aws4_request")
}

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new().chain_update(block.map(|b| b ^ 0x36)).chain_update(data).finalize();
    Sha256::new().chain_update(block.map(|b| b ^ 0x5c)).chain_update(inner).finalize().into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Equality whose time depends on the lengths only, not on where the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Each path segment URI-encoded (the path arrives encoded, so this encodes it twice, as every
/// service but S3 expects); an empty path is `/`.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/').map(uri_encode).collect::<Vec<_>>().join("/")
}

/// `name=value` pairs, decoded and re-encoded the SigV4 way, sorted by name then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&percent_decode(k)), uri_encode(&percent_decode(v)))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// Every byte but the unreserved ones (`A-Z a-z 0-9 - _ . ~`) as `%XX`.
fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_at = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
        match (bytes[i], hex_at(i + 1), hex_at(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Trimmed, with each run of spaces and tabs as one space.
fn collapse_spaces(v: &str) -> String {
    v.split([' ', '\t']).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// `YYYYMMDDTHHMMSSZ`.
fn is_amz_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 16 && b[8] == b'T' && b[15] == b'Z' && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A secret access key for one run: 40 characters from a CSPRNG, like AWS's.
pub fn random_secret_key() -> String {
    use rand::Rng;
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(40).map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values below come from two independent sources: the worked example of the AWS
    // General Reference ("Signature Version 4 signing process", IAM ListUsers on 2015-08-30 with
    // the documented example key), and botocore 1.44's `SigV4Auth` (the signer boto3 uses),
    // run in the test venv on the requests rebuilt here. Both agree on the AWS example.
    const DOC_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231 test case 2.
        assert_eq!(hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        // Test case 6: a key longer than the block is hashed first.
        assert_eq!(
            hex(&hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn the_aws_documented_example() {
        assert_eq!(hex(&signing_key(DOC_SECRET, "20150830", "us-east-1", "iam")), "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
        let h = headers(&[
            ("content-type", "application/x-www-form-urlencoded; charset=utf-8"),
            ("host", "iam.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
        ]);
        let uri: Uri = "/?Action=ListUsers&Version=2010-05-08".parse().unwrap();
        let empty = hex(&Sha256::digest(b""));
        let cr = canonical_request(&Method::GET, &uri, &h, &["content-type", "host", "x-amz-date"], &empty);
        assert_eq!(
            cr,
            "GET\n/\nAction=ListUsers&Version=2010-05-08\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(hex(&Sha256::digest(cr.as_bytes())), "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
        let sts = string_to_sign("20150830T123600Z", "20150830/us-east-1/iam/aws4_request", &cr);
        let sig = hex(&hmac_sha256(&signing_key(DOC_SECRET, "20150830", "us-east-1", "iam"), sts.as_bytes()));
        assert_eq!(sig, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
    }

    /// A GetSecretValue as boto3 signs it with `test`/`test` (signature from botocore).
    fn boto3_request(signature: &str) -> (Uri, HeaderMap, &'static [u8]) {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={signature}"
        );
        let h = headers(&[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "secretsmanager.GetSecretValue"),
            ("host", "127.0.0.1:4566"),
            ("x-amz-date", "20260101T000000Z"),
            ("authorization", &auth),
        ]);
        ("/".parse().unwrap(), h, br#"{"SecretId": "my-secret"}"#)
    }

    const BOTO3_SIG: &str = "5fcd8a017566b5c016391c8ca176901eebd4a409245613568bf0c44f51711631";

    fn check(keys: &[(&str, &str)]) -> SignatureCheck {
        let mut c = SignatureCheck::default();
        c.set_enabled(true);
        c.set_advice("ADVICE");
        for (k, s) in keys {
            c.add(*k, *s);
        }
        c
    }

    #[test]
    fn a_boto3_request_verifies_and_any_change_does_not() {
        let c = check(&[("test", "test")]);
        let (uri, h, body) = boto3_request(BOTO3_SIG);
        c.verify(&Method::POST, &uri, &h, body).unwrap();

        let kind = |r: Result<(), ApiError>| r.unwrap_err().kind;
        let mismatch = ErrorKind::InvalidSignatureException;
        assert_eq!(kind(c.verify(&Method::POST, &uri, &h, br#"{"SecretId": "other"}"#)), mismatch, "body");
        assert_eq!(kind(c.verify(&Method::PUT, &uri, &h, body)), mismatch, "method");
        assert_eq!(kind(c.verify(&Method::POST, &"/?x=1".parse().unwrap(), &h, body)), mismatch, "query");
        let mut h2 = h.clone();
        h2.insert("x-amz-target", "secretsmanager.DeleteSecret".parse().unwrap());
        assert_eq!(kind(c.verify(&Method::POST, &uri, &h2, body)), mismatch, "signed header");
        let mut h2 = h.clone();
        h2.insert("user-agent", "unsigned headers do not matter".parse().unwrap());
        c.verify(&Method::POST, &uri, &h2, body).unwrap();
        let mut h2 = h.clone();
        h2.insert("x-amz-content-sha256", hex(&Sha256::digest(b"{}")).parse().unwrap());
        assert_eq!(kind(c.verify(&Method::POST, &uri, &h2, body)), mismatch, "declared body hash");
        let mut h2 = h.clone();
        h2.insert("x-amz-content-sha256", hex(&Sha256::digest(body)).parse().unwrap());
        c.verify(&Method::POST, &uri, &h2, body).unwrap();

        let wrong_secret = check(&[("test", "not-test")]);
        assert_eq!(kind(wrong_secret.verify(&Method::POST, &uri, &h, body)), mismatch);
        let unknown = check(&[("other", "test")]);
        assert_eq!(kind(unknown.verify(&Method::POST, &uri, &h, body)), ErrorKind::UnrecognizedClientException);
        let (_, h, _) = boto3_request(&BOTO3_SIG.replace('5', "6"));
        assert_eq!(kind(c.verify(&Method::POST, &uri, &h, body)), mismatch, "signature");
        let (_, h, _) = boto3_request(&BOTO3_SIG.to_uppercase());
        assert_eq!(kind(c.verify(&Method::POST, &uri, &h, body)), mismatch, "upper-case hex is not what SigV4 signs");
    }

    #[test]
    fn query_and_header_values_are_canonicalised_as_botocore_does() {
        // botocore signed POST http://localhost:8080/?b=2&a=x%20y&a=1 with X-Custom: "  a   b\tc  ".
        let c = check(&[("AKIDMESSY", "s3cr3t/with+chars")]);
        let h = headers(&[
            ("content-type", "application/x-amz-json-1.1"),
            ("x-custom", "  a   b\tc  "),
            ("host", "localhost:8080"),
            ("x-amz-date", "20260315T101112Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDMESSY/20260315/eu-west-2/secretsmanager/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-custom, Signature=23f9cfd6d5a8f766459ddfb2569c72049fe13246f94364d1b8ab5e934589eaa3",
            ),
        ]);
        let uri: Uri = "/?b=2&a=x%20y&a=1".parse().unwrap();
        let cr = canonical_request(&Method::POST, &uri, &h, &["content-type", "host", "x-amz-date", "x-custom"], &hex(&Sha256::digest(b"{}")));
        assert_eq!(
            cr,
            "POST\n/\na=1&a=x%20y&b=2\ncontent-type:application/x-amz-json-1.1\nhost:localhost:8080\nx-amz-date:20260315T101112Z\nx-custom:a b c\n\ncontent-type;host;x-amz-date;x-custom\n44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        c.verify(&Method::POST, &uri, &h, b"{}").unwrap();
    }

    #[test]
    fn malformed_or_missing_signatures_are_incomplete() {
        let c = check(&[("test", "test")]);
        let (uri, good, body) = boto3_request(BOTO3_SIG);
        let with_auth = |v: &str| {
            let mut h = good.clone();
            h.insert(hyper::header::AUTHORIZATION, v.parse().unwrap());
            h
        };
        let mut unsigned = good.clone();
        unsigned.remove(hyper::header::AUTHORIZATION);
        let mut no_date = good.clone();
        no_date.remove("x-amz-date");
        let mut bad_date = good.clone();
        bad_date.insert("x-amz-date", "2026-01-01T00:00:00Z".parse().unwrap());
        for (what, h) in [
            ("unsigned", unsigned),
            ("no date", no_date),
            ("bad date", bad_date),
            ("other algorithm", with_auth("AWS4-ECDSA-P256-SHA256 Credential=test/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=ab")),
            ("basic auth", with_auth("Basic dGVzdDp0ZXN0")),
            ("no signature", with_auth("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host")),
            ("short scope", with_auth("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1, SignedHeaders=host, Signature=ab")),
            ("host unsigned", with_auth("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=x-amz-date, Signature=ab")),
        ] {
            let e = c.verify(&Method::POST, &uri, &h, body).unwrap_err();
            assert_eq!(e.kind, ErrorKind::IncompleteSignature, "{what}: {e}");
            assert!(e.message.ends_with(" ADVICE"), "{what}: {e}");
        }
        // The scope's day must be X-Amz-Date's day.
        let mut next_day = good.clone();
        next_day.insert("x-amz-date", "20260102T000000Z".parse().unwrap());
        assert_eq!(c.verify(&Method::POST, &uri, &next_day, body).unwrap_err().kind, ErrorKind::InvalidSignatureException);
    }

    #[test]
    fn off_accepts_anything_and_no_message_or_debug_holds_a_secret() {
        let mut c = SignatureCheck::default();
        assert!(!c.enabled());
        c.verify(&Method::GET, &"/".parse().unwrap(), &HeaderMap::new(), b"").unwrap();
        c.add("test", "the-secret-key");
        c.set_enabled(true);
        let (uri, h, body) = boto3_request(BOTO3_SIG);
        let e = c.verify(&Method::POST, &uri, &h, body).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidSignatureException);
        assert!(e.message.contains("does not match") && e.message.ends_with(DEFAULT_ADVICE), "{e}");
        assert!(!e.message.contains("the-secret-key"));
        let debug = format!("{c:?}");
        assert!(debug.contains("\"test\"") && !debug.contains("the-secret-key"), "{debug}");
    }

    #[test]
    fn random_secret_keys_differ() {
        let (a, b) = (random_secret_key(), random_secret_key());
        assert_eq!(a.len(), 40);
        assert_ne!(a, b);
    }
}
