//! Attestations signed with a key: DSSE envelopes (the in-toto attestation framework's signed
//! form) made by a [`Signer`] and checked with a [`PublicKey`]. Keys are unencrypted PKCS#8 PEM
//! (what `openssl genpkey` writes), ECDSA P-256 with SHA-256 (cosign's default; signatures in
//! ASN.1 DER, as cosign and securesystemslib write them) or Ed25519; both sign
//! deterministically (RFC 6979 for ECDSA), so the same statement and key give the same
//! envelope.
//!
//! The key is a secret: `CARGO_OCI_SIGNING_KEY` is taken out of the environment when the
//! program starts ([`take_from_environment`]), so no process it runs (cargo, every build script,
//! a loader) inherits it, and no message ever shows its text.
//!
//! [`Signer`] is what keyless signing (a Fulcio certificate for the CI's OIDC identity, the
//! signature logged in Rekor) would implement too; only keys are implemented today.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The environment variable that holds the signing key: a path, or the PEM text itself.
pub const KEY_VAR: &str = "CARGO_OCI_SIGNING_KEY";

/// The payload type of an envelope holding an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = oci_pack::media_type::IN_TOTO_JSON;

/// The key `CARGO_OCI_SIGNING_KEY` gave, once taken out of the environment.
static ENV_KEY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// Moves `CARGO_OCI_SIGNING_KEY` from the environment into this process alone. Called first
/// thing in `main`, while there is one thread.
pub fn take_from_environment() {
    let key = std::env::var(KEY_VAR).ok().filter(|v| !v.trim().is_empty());
    std::env::remove_var(KEY_VAR);
    let _ = ENV_KEY.set(key);
}

/// What signs: a key today; a keyless signer (a short-lived certificate for the CI's identity)
/// would be another implementation.
pub trait Signer: Send + Sync + std::fmt::Debug {
    /// The key's id as envelopes name it: the sha256 of its public key's DER
    /// (SubjectPublicKeyInfo), in hex.
    fn key_id(&self) -> &str;
    /// The signature of `message`, as the envelope's `sig` holds it (before base64).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
}

/// A private key read from PKCS#8 PEM.
pub struct KeySigner {
    key: SecretKey,
    key_id: String,
}

enum SecretKey {
    P256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl std::fmt::Debug for KeySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key itself.
        f.debug_struct("KeySigner")
            .field("algorithm", &self.algorithm())
            .field("key_id", &self.key_id)
            .finish()
    }
}

impl KeySigner {
    /// The key `--sign-key` names, else `CARGO_OCI_SIGNING_KEY`'s (a path or the PEM itself);
    /// `None` when neither is given.
    pub fn from_args(path: Option<&Path>) -> Result<Option<KeySigner>> {
        if let Some(path) = path {
            return KeySigner::from_file(path).map(Some);
        }
        let from_env = match ENV_KEY.get() {
            Some(taken) => taken.clone(),
            // A library user's process: its environment is its own.
            None => std::env::var(KEY_VAR).ok().filter(|v| !v.trim().is_empty()),
        };
        let Some(value) = from_env else {
            return Ok(None);
        };
        if value.contains("-----BEGIN") {
            return KeySigner::from_pem(&value)
                .with_context(|| format!("invalid signing key in `{KEY_VAR}`"))
                .map(Some);
        }
        let path = PathBuf::from(value.trim());
        if !path.is_file() {
            // The value may be a secret pasted wrong: it is not shown.
            bail!("`{KEY_VAR}` is neither a PEM key nor the path of a file");
        }
        KeySigner::from_file(&path).map(Some)
    }

    pub fn from_file(path: &Path) -> Result<KeySigner> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read the signing key `{}`", path.display()))?;
        KeySigner::from_pem(&text)
            .with_context(|| format!("invalid signing key `{}`", path.display()))
    }

    /// An unencrypted PKCS#8 private key, ECDSA P-256 or Ed25519.
    pub fn from_pem(text: &str) -> Result<KeySigner> {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        match pem_label(text).as_deref() {
            Some("PRIVATE KEY") => {}
            Some("ENCRYPTED PRIVATE KEY") => bail!(
                "the key is encrypted; give an unencrypted PKCS#8 key (`openssl pkcs8 -topk8 \
                 -nocrypt -in KEY -out key.pem`), kept as a CI secret"
            ),
            Some("EC PRIVATE KEY") => bail!(
                "the key is in SEC1 form (`BEGIN EC PRIVATE KEY`); convert it to PKCS#8 with \
                 `openssl pkcs8 -topk8 -nocrypt -in KEY -out key.pem`"
            ),
            Some(other) => {
                bail!("expected a PKCS#8 private key (`BEGIN PRIVATE KEY`), found `BEGIN {other}`")
            }
            None => bail!("expected a PEM private key (`-----BEGIN PRIVATE KEY-----`)"),
        }
        let key = if let Ok(key) = p256::ecdsa::SigningKey::from_pkcs8_pem(text) {
            SecretKey::P256(key)
        } else if let Ok(key) = ed25519_dalek::SigningKey::from_pkcs8_pem(text) {
            SecretKey::Ed25519(key)
        } else {
            bail!(
                "the key is neither ECDSA P-256 nor Ed25519 (make one with `openssl genpkey \
                 -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem` or \
                 `openssl genpkey -algorithm ed25519 -out key.pem`)"
            )
        };
        let public = match &key {
            SecretKey::P256(key) => PublicKey::P256(*key.verifying_key()),
            SecretKey::Ed25519(key) => PublicKey::Ed25519(key.verifying_key()),
        };
        Ok(KeySigner {
            key,
            key_id: public.key_id()?,
        })
    }

    /// `ecdsa-p256` or `ed25519`.
    pub fn algorithm(&self) -> &'static str {
        match self.key {
            SecretKey::P256(_) => "ecdsa-p256",
            SecretKey::Ed25519(_) => "ed25519",
        }
    }
}

impl Signer for KeySigner {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        use ed25519_dalek::Signer as _;
        Ok(match &self.key {
            SecretKey::P256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
            SecretKey::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
        })
    }
}

/// The label of the first PEM block in `text` (`PRIVATE KEY`), if it has one.
fn pem_label(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        line.trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
            .map(str::to_owned)
    })
}

/// A public key that checks signatures: SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`), as
/// `openssl pkey -pubout` writes it.
#[derive(Debug, Clone)]
pub enum PublicKey {
    P256(p256::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl PublicKey {
    pub fn from_file(path: &Path) -> Result<PublicKey> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read the public key `{}`", path.display()))?;
        PublicKey::from_pem(&text)
            .with_context(|| format!("invalid public key `{}`", path.display()))
    }

    pub fn from_pem(text: &str) -> Result<PublicKey> {
        use ed25519_dalek::pkcs8::DecodePublicKey as _;
        match pem_label(text).as_deref() {
            Some("PUBLIC KEY") => {}
            Some(label) if label.contains("PRIVATE") => bail!(
                "this is a private key; give its public key (`openssl pkey -in KEY -pubout \
                 -out pub.pem`)"
            ),
            Some(other) => {
                bail!("expected a public key (`BEGIN PUBLIC KEY`), found `BEGIN {other}`")
            }
            None => bail!("expected a PEM public key (`-----BEGIN PUBLIC KEY-----`)"),
        }
        if let Ok(key) = p256::ecdsa::VerifyingKey::from_public_key_pem(text) {
            Ok(PublicKey::P256(key))
        } else if let Ok(key) = ed25519_dalek::VerifyingKey::from_public_key_pem(text) {
            Ok(PublicKey::Ed25519(key))
        } else {
            bail!("the key is neither ECDSA P-256 nor Ed25519")
        }
    }

    /// The sha256 of the key's SubjectPublicKeyInfo DER, in hex: the `keyid` of envelopes it
    /// signs (`openssl pkey -pubin -outform DER | sha256sum` gives the same).
    pub fn key_id(&self) -> Result<String> {
        use ed25519_dalek::pkcs8::EncodePublicKey as _;
        let der = match self {
            PublicKey::P256(key) => key.to_public_key_der(),
            PublicKey::Ed25519(key) => key.to_public_key_der(),
        }
        .context("failed to encode the public key")?;
        Ok(hex(&Sha256::digest(der.as_bytes())))
    }

    /// Whether `signature` is this key's of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            PublicKey::P256(key) => {
                use p256::ecdsa::signature::Verifier as _;
                p256::ecdsa::Signature::from_der(signature)
                    .is_ok_and(|signature| key.verify(message, &signature).is_ok())
            }
            PublicKey::Ed25519(key) => ed25519_dalek::Signature::from_slice(signature)
                .is_ok_and(|signature| key.verify_strict(message, &signature).is_ok()),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A DSSE envelope, as the DSSE spec and the in-toto attestation framework define it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The payload, in standard base64.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    #[serde(default)]
    pub keyid: String,
    /// The signature, in standard base64.
    pub sig: String,
}

/// DSSE's pre-authentication encoding, what is signed: `DSSEv1 LEN(type) type LEN(body) body`,
/// lengths in ASCII decimal, separated by single spaces.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut message = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    message.extend_from_slice(payload);
    message
}

/// Why an envelope does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    /// It is not a DSSE envelope, or its payload is not base64.
    Malformed(String),
    /// It carries no signature.
    Unsigned,
    /// None of its signatures is the key's.
    WrongSignature,
}

impl std::fmt::Display for Unverified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unverified::Malformed(why) => write!(f, "not a DSSE envelope: {why}"),
            Unverified::Unsigned => write!(f, "it carries no signature"),
            Unverified::WrongSignature => write!(f, "no signature in it is the key's"),
        }
    }
}

impl Envelope {
    /// `payload` of `payload_type`, signed by `signer`.
    pub fn sign(payload_type: &str, payload: &[u8], signer: &dyn Signer) -> Result<Envelope> {
        let signature = signer.sign(&pae(payload_type, payload))?;
        let base64 = base64::engine::general_purpose::STANDARD;
        Ok(Envelope {
            payload_type: payload_type.to_owned(),
            payload: base64.encode(payload),
            signatures: vec![EnvelopeSignature {
                keyid: signer.key_id().to_owned(),
                sig: base64.encode(signature),
            }],
        })
    }

    /// The envelope as written: compact JSON and a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(self).expect("an envelope serializes");
        bytes.push(b'\n');
        bytes
    }

    pub fn parse(bytes: &[u8]) -> Result<Envelope, Unverified> {
        serde_json::from_slice(bytes).map_err(|error| Unverified::Malformed(error.to_string()))
    }

    /// The decoded payload, without any check of the signatures.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, Unverified> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.payload)
            .map_err(|error| Unverified::Malformed(format!("payload: {error}")))
    }

    /// The payload, if one of the signatures is `key`'s over it.
    pub fn verify(&self, key: &PublicKey) -> Result<Vec<u8>, Unverified> {
        let payload = self.payload_bytes()?;
        if self.signatures.is_empty() {
            return Err(Unverified::Unsigned);
        }
        let message = pae(&self.payload_type, &payload);
        let base64 = base64::engine::general_purpose::STANDARD;
        let signed = self.signatures.iter().any(|signature| {
            base64
                .decode(&signature.sig)
                .is_ok_and(|sig| key.verifies(&message, &sig))
        });
        match signed {
            true => Ok(payload),
            false => Err(Unverified::WrongSignature),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` and
    // `openssl genpkey -algorithm ed25519`; test keys, signing nothing else.
    const P256_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg4W+7rny67/uVFv8E
xdyXXPdF8mngRTkUT7HJuNDUrDehRANCAAT4kdwETQbNjbjxQNwd3L5/hZeaZWYB
ZnmdoVmi2mtnuc5MDc9tWdrRPJIHd8EFQ4UH0NsTKAt88QD506XWP1J5
-----END PRIVATE KEY-----
";
    const ED25519_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIMRJcbJByHJME19Lbv4q+r4WIuFtrdWIqSO8XMQ6DFeU
-----END PRIVATE KEY-----
";

    #[test]
    fn pae_is_as_the_dsse_spec_gives_it() {
        // The spec's own example.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn an_envelope_verifies_with_its_key_and_no_other() {
        for (pem, algorithm) in [(P256_KEY, "ecdsa-p256"), (ED25519_KEY, "ed25519")] {
            let signer = KeySigner::from_pem(pem).unwrap();
            assert_eq!(signer.algorithm(), algorithm);
            let public = match &signer.key {
                SecretKey::P256(key) => PublicKey::P256(*key.verifying_key()),
                SecretKey::Ed25519(key) => PublicKey::Ed25519(key.verifying_key()),
            };
            let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, b"{\"a\":1}", &signer).unwrap();
            assert_eq!(envelope.verify(&public).unwrap(), b"{\"a\":1}");
            assert_eq!(envelope.signatures[0].keyid, public.key_id().unwrap());
            // Deterministic: the same payload and key, the same envelope.
            assert_eq!(
                envelope,
                Envelope::sign(IN_TOTO_PAYLOAD_TYPE, b"{\"a\":1}", &signer).unwrap()
            );
            let mut tampered = envelope.clone();
            tampered.payload = base64::engine::general_purpose::STANDARD.encode(b"{\"a\":2}");
            assert_eq!(tampered.verify(&public), Err(Unverified::WrongSignature));
            let mut retyped = envelope.clone();
            retyped.payload_type = "text/plain".into();
            assert_eq!(retyped.verify(&public), Err(Unverified::WrongSignature));
            let mut unsigned = envelope.clone();
            unsigned.signatures.clear();
            assert_eq!(unsigned.verify(&public), Err(Unverified::Unsigned));
            assert!(!format!("{signer:?}").contains("PRIVATE"));
        }
        let p256 = KeySigner::from_pem(P256_KEY).unwrap();
        let ed25519 = KeySigner::from_pem(ED25519_KEY).unwrap();
        let other = match &ed25519.key {
            SecretKey::Ed25519(key) => PublicKey::Ed25519(key.verifying_key()),
            SecretKey::P256(_) => unreachable!(),
        };
        let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, b"x", &p256).unwrap();
        assert_eq!(envelope.verify(&other), Err(Unverified::WrongSignature));
    }

    #[test]
    fn keys_in_other_forms_are_refused_with_the_way_out() {
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED \
                         PRIVATE KEY-----\n";
        let error = KeySigner::from_pem(encrypted).unwrap_err().to_string();
        assert!(
            error.contains("encrypted") && error.contains("-nocrypt"),
            "{error}"
        );
        let sec1 = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let error = KeySigner::from_pem(sec1).unwrap_err().to_string();
        assert!(error.contains("openssl pkcs8 -topk8"), "{error}");
        let error = KeySigner::from_pem("not a key").unwrap_err().to_string();
        assert!(error.contains("PEM"), "{error}");
        let error = PublicKey::from_pem(P256_KEY).unwrap_err().to_string();
        assert!(error.contains("-pubout"), "{error}");
    }
}
