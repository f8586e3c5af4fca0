//! PyJWT, a JWT verifier independent of the code that mints the tokens.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// The project's Python with PyJWT (`make test` creates `.venv`); `PYTHON` overrides it.
fn python() -> PathBuf {
    std::env::var_os("PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

/// Verifies a token with PyJWT, a verifier independent of the code that minted it: signature,
/// algorithm, expiry and the presence of Medusa's claims. Returns the claims, or PyJWT's complaint.
pub fn verify_independently(token: &str, secret: &str, audience: Option<&str>) -> Result<Value, String> {
    const SCRIPT: &str = r#"
import json, sys, jwt
token, secret, audience = sys.argv[1], sys.argv[2], sys.argv[3] or None
try:
    claims = jwt.decode(token, secret, algorithms=["HS256"], audience=audience,
        options={"require": ["exp", "iat", "jti", "entity_id", "actor_type", "provider"]})
except jwt.PyJWTError as e:
    print(type(e).__name__ + ": " + str(e)); sys.exit(1)
print(json.dumps(claims))
"#;
    let output = Command::new(python())
        .args(["-c", SCRIPT, token, secret, audience.unwrap_or("")])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (run `make test`, which creates .venv): {e}", python().display()));
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() {
        Ok(serde_json::from_str(&stdout).expect("PyJWT prints JSON claims"))
    } else {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)))
    }
}
