//! Reads the update route's body as Medusa's emailpass provider reads it: the new password is
//! `password` when it is a non-empty string; anything else is no password at all.

use std::fmt;

use serde_json::Value;

/// A new password as the body gave it. Never printed: `Debug` is redacted and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword(String);

impl NewPassword {
    /// `None` for a body that is not an object, or whose `password` is missing, empty or not a
    /// string: Medusa then writes nothing and answers 401 "Unauthorized".
    pub fn from_body(body: &Value) -> Option<Self> {
        match body.get("password") {
            Some(Value::String(password)) if !password.is_empty() => Some(Self(password.clone())),
            _ => None,
        }
    }

    /// The password's UTF-8 bytes, what scrypt-kdf hashes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_non_empty_string_is_the_new_password() {
        let password = NewPassword::from_body(&json!({"password": "correct horse", "other": 1})).unwrap();
        assert_eq!(password.as_bytes(), b"correct horse");
        assert!(!format!("{password:?}").contains("horse"));
    }

    #[test]
    fn anything_else_is_no_password() {
        let bodies = [
            json!({}),
            json!({"password": ""}),
            json!({"password": 12345678}),
            json!({"password": null}),
            json!({"password": ["a"]}),
            json!({"Password": "x"}),
            json!({"__proto__": {"password": "x"}}),
            json!(["password"]),
            json!(null),
        ];
        for body in bodies {
            assert_eq!(NewPassword::from_body(&body), None, "{body}");
        }
    }
}
