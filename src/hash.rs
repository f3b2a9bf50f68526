//! Password hashes: the one place that knows their rules (argon2id, its
//! parameters and their limits). `hbmon passwd` makes them, the work's
//! validation checks them (`work/logins.rs`), the dashboard verifies them
//! (`pagemaker/auth/`): a library below all three, so none reaches into a role.

use crate::error::{Error, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// OWASP's first recommended argon2id setting (Password Storage Cheat
/// Sheet): 19 MiB of memory, 2 passes, 1 lane. About 30 ms on one core.
pub const ARGON2_M_KIB: u32 = 19 * 1024;
pub const ARGON2_T: u32 = 2;
pub const ARGON2_P: u32 = 1;
/// Limits on the parameters of a hash in the work: a typo such as
/// `m=19456000` would make every login allocate 19 GiB.
pub const MAX_M_KIB: u32 = 1024 * 1024;
pub const MAX_T: u32 = 16;
pub const MAX_P: u32 = 16;

fn argon2() -> Argon2<'static> {
    // The constants are valid; `Params::DEFAULT` is the same OWASP setting.
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None).unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// 16 random bytes from the OS RNG (getrandom(2)) for a salt.
fn salt_bytes() -> Result<[u8; 16]> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| Error::Runtime(format!("reading the OS random number generator: {e}")))?;
    Ok(b)
}

/// Hashes `pw` with argon2id (OWASP parameters, 16-byte random salt) into
/// a PHC string: `$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH`.
pub fn hash_password(pw: &str) -> Result<String> {
    let salt = SaltString::encode_b64(&salt_bytes()?)
        .map_err(|e| Error::Runtime(format!("password salt: {e}")))?;
    argon2()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Runtime(format!("hashing the password: {e}")))
}

/// Is `hash` an argon2id PHC string this dashboard will verify? The work's
/// validation calls it so a bad hash is a `file:line` error, not a login
/// that can never succeed.
pub fn check_hash(hash: &str) -> std::result::Result<(), String> {
    let h = PasswordHash::new(hash).map_err(|e| format!("not a password hash ({e})"))?;
    if h.algorithm.as_str() != "argon2id" {
        return Err(format!("'{}' hash: expected argon2id (made by `hbmon passwd`)", h.algorithm));
    }
    let p = Params::try_from(&h).map_err(|e| format!("bad argon2id parameters ({e})"))?;
    if p.m_cost() > MAX_M_KIB || p.t_cost() > MAX_T || p.p_cost() > MAX_P {
        return Err(format!(
            "argon2id parameters m={},t={},p={} exceed m={MAX_M_KIB},t={MAX_T},p={MAX_P}",
            p.m_cost(),
            p.t_cost(),
            p.p_cost()
        ));
    }
    if h.hash.is_none() || h.salt.is_none() {
        return Err("password hash has no salt or no hash part".into());
    }
    Ok(())
}

/// Does `pw` match `hash`? The argon2 crate compares in constant time; a
/// malformed hash (or one over the limits) never matches.
pub fn verify_password(hash: &str, pw: &str) -> bool {
    if check_hash(hash).is_err() {
        return false;
    }
    match PasswordHash::new(hash) {
        // The hash's own parameters apply (the algorithm was checked above).
        Ok(h) => Argon2::default().verify_password(pw.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_is_argon2id_with_owasp_parameters_and_verifies_only_its_password() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_eq!(check_hash(&h), Ok(()));
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct horse "));
        assert!(!verify_password(&h, ""));
        // A fresh salt each time.
        assert_ne!(h, hash_password("correct horse").unwrap());
    }

    #[test]
    fn bad_hashes_are_refused_with_a_reason_and_never_verify() {
        let good = hash_password("pw").unwrap();
        let argon2i = good.replacen("$argon2id$", "$argon2i$", 1);
        let huge = good.replacen("m=19456", "m=19456000", 1);
        for (bad, why) in [
            ("", "not a password hash"),
            ("hunter2", "not a password hash"),
            ("$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "expected argon2id"),
            (argon2i.as_str(), "expected argon2id"),
            (huge.as_str(), "exceed"),
            ("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ", "no salt or no hash"),
        ] {
            let e = check_hash(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(!verify_password(bad, "pw"), "{bad}");
        }
    }
}
