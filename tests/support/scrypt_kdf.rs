//! Checks a scrypt-kdf hash (what Medusa's emailpass provider stores) with Python's `hashlib.scrypt`,
//! a verifier independent of the code that wrote it: the header, its checksum, and the HMAC keyed by
//! the password's derived key.

use std::process::Command;

/// Whether `hash` (base64, as `provider_metadata.password` holds it) is `password`'s; `Err` says
/// which part of the format is wrong.
pub fn verify_password(hash: &str, password: &str) -> Result<bool, String> {
    const SCRIPT: &str = r#"
import base64, hashlib, hmac, struct, sys
key = base64.b64decode(sys.argv[1], validate=True)
password = sys.argv[2].encode()
if len(key) != 96 or key[:6] != b"scrypt" or key[6] != 0:
    print("not scrypt-kdf version 0 of 96 bytes"); sys.exit(2)
log_n, (r, p) = key[7], struct.unpack(">II", key[8:16])
if hashlib.sha256(key[:48]).digest()[:16] != key[48:64]:
    print("bad checksum"); sys.exit(2)
derived = hashlib.scrypt(password, salt=key[16:48], n=1 << log_n, r=r, p=p, maxmem=2**31 - 1, dklen=64)
ok = hmac.compare_digest(hmac.new(derived[32:], key[:64], hashlib.sha256).digest(), key[64:])
print(f"{log_n} {r} {p} {ok}")
"#;
    let output = Command::new("python3")
        .args(["-c", SCRIPT, hash, password])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() {
        return Err(format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(stdout.ends_with("True"))
}

/// The `logN`, `r` and `p` a hash's header names.
pub fn parameters(hash: &str) -> (u8, u32, u32) {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.decode(hash).expect("base64");
    (key[7], u32::from_be_bytes(key[8..12].try_into().unwrap()), u32::from_be_bytes(key[12..16].try_into().unwrap()))
}
