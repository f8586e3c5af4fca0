//! Hashes a new password exactly as Medusa's emailpass provider stores it, so Medusa logs in with it.
//!
//! Medusa keeps `provider_metadata.password` = base64 of the npm `scrypt-kdf` key, Colin Percival's
//! 96-byte scrypt file header: parameters, salt, a checksum, and an HMAC keyed by the scrypt output.
//! It applies no Unicode normalisation: the bytes hashed are the UTF-8 of the string the client sent.

use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Length of the scrypt-kdf key Medusa stores (before base64).
pub const KEY_LEN: usize = 96;
/// scrypt-kdf draws a fresh 32-byte salt for every hash.
pub const SALT_LEN: usize = 32;

const MAGIC: &[u8; 6] = b"scrypt";
const VERSION: u8 = 0;
/// scrypt-kdf asks for 64 bytes and keys its HMAC with the last 32.
const DERIVED_LEN: usize = 64;

/// scrypt-kdf's own range for logN.
const LOG_N_RANGE: std::ops::RangeInclusive<u8> = 1..=30;
/// scrypt-kdf (and the scrypt paper) require r·p < 2^30.
const MAX_R_TIMES_P: u64 = (1 << 30) - 1;
/// scrypt-kdf hands Node's crypto.scrypt `maxmem: 2**31-1`; OpenSSL counts 128·r·(N + p + 2) bytes
/// against it. A hash above it could be stored but Medusa's verify would throw on every log-in.
const NODE_MAXMEM: u64 = (1 << 31) - 1;
/// 1 GiB of scrypt's table is logN 20 at r 8, 32 times Medusa's default: more than any sane
/// setting, yet within a Lambda's 10 GiB; a larger value is a typo, not a policy.
pub const MAX_MEMORY_BYTES: u64 = 1 << 30;
/// p repeats the whole mix p times in the one request: 4 GiB of mixing is 128 times Medusa's default,
/// seconds in a Lambda. Beyond it the reset request would hit API Gateway's 29-second limit.
pub const MAX_WORK_BYTES: u64 = 1 << 32;

/// Why scrypt parameters are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHashParams {
    #[error("logN must be between 1 and 30, as scrypt-kdf requires; got {0}")]
    LogN(u8),
    #[error("r must be at least 1")]
    ZeroR,
    #[error("p must be at least 1")]
    ZeroP,
    #[error("r·p must be below 2^30, as scrypt-kdf requires; got r = {r}, p = {p}")]
    RTimesP { r: u32, p: u32 },
    #[error("logN must be below 16·r, or OpenSSL (which Medusa verifies with) refuses; got logN = {log_n}, r = {r}")]
    LogNAboveBlockSize { log_n: u8, r: u32 },
    #[error("scrypt would need {needed} bytes, above the {max} allowed")]
    Memory { needed: u128, max: u64 },
    #[error("scrypt would mix {needed} bytes, above the {max} a request can spend")]
    Work { needed: u128, max: u64 },
    #[error("Node's OpenSSL scrypt would need {needed} bytes, above scrypt-kdf's maxmem of {max}")]
    NodeMaxmem { needed: u128, max: u64 },
    #[error("the scrypt crate refuses these parameters")]
    Scrypt,
}

/// scrypt's cost parameters, as written into the key's header. Only values that both this crate's
/// scrypt and Medusa (scrypt-kdf on Node's OpenSSL) accept, and that a Lambda can run, exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    log_n: u8,
    r: u32,
    p: u32,
}

impl Default for HashParams {
    /// emailpass's `hashConfig` when its options set none.
    fn default() -> Self {
        Self { log_n: 15, r: 8, p: 1 }
    }
}

impl HashParams {
    pub fn new(log_n: u8, r: u32, p: u32) -> Result<Self, InvalidHashParams> {
        if !LOG_N_RANGE.contains(&log_n) {
            return Err(InvalidHashParams::LogN(log_n));
        }
        if r == 0 {
            return Err(InvalidHashParams::ZeroR);
        }
        if p == 0 {
            return Err(InvalidHashParams::ZeroP);
        }
        // Checked in u64 before the scrypt crate sees it: it multiplies r·p in u32.
        if u64::from(r) * u64::from(p) > MAX_R_TIMES_P {
            return Err(InvalidHashParams::RTimesP { r, p });
        }
        // OpenSSL keeps RFC 7914's N < 2^(16·r), which the scrypt crate dropped; with logN ≤ 30 only
        // r = 1 can break it.
        if u32::from(log_n) >= r.saturating_mul(16) {
            return Err(InvalidHashParams::LogNAboveBlockSize { log_n, r });
        }
        // u128: 128·r·N reaches 2^69 before these bounds cut it down.
        let (n, r_wide, p_wide) = (1u128 << log_n, u128::from(r), u128::from(p));
        let memory = 128 * r_wide * n;
        if memory > u128::from(MAX_MEMORY_BYTES) {
            return Err(InvalidHashParams::Memory { needed: memory, max: MAX_MEMORY_BYTES });
        }
        let work = memory * p_wide;
        if work > u128::from(MAX_WORK_BYTES) {
            return Err(InvalidHashParams::Work { needed: work, max: MAX_WORK_BYTES });
        }
        let node_memory = 128 * r_wide * (n + p_wide + 2);
        if node_memory > u128::from(NODE_MAXMEM) {
            return Err(InvalidHashParams::NodeMaxmem { needed: node_memory, max: NODE_MAXMEM });
        }
        // The crate's own refusals are all implied by the above; checked so a new version's cannot
        // surface later, in the middle of a reset.
        scrypt::Params::new(log_n, r, p).map_err(|_| InvalidHashParams::Scrypt)?;
        Ok(Self { log_n, r, p })
    }

    pub fn log_n(&self) -> u8 {
        self.log_n
    }

    pub fn r(&self) -> u32 {
        self.r
    }

    pub fn p(&self) -> u32 {
        self.p
    }

    /// Bytes of scrypt's table, 128·r·N: what the function's memory must exceed.
    pub fn memory_bytes(&self) -> u64 {
        // At most MAX_MEMORY_BYTES by construction, so no overflow.
        128 * u64::from(self.r) * (1u64 << self.log_n)
    }
}

/// Why a hash could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("the system's random generator failed")]
    Random,
    /// Cannot happen: `HashParams` and the 64-byte output are within what the crate accepts.
    #[error("the scrypt crate refused the parameters or the output length")]
    Scrypt,
}

/// Makes scrypt-kdf keys with one set of parameters; build it once, at start-up.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: HashParams,
}

impl PasswordHasher {
    pub fn new(params: HashParams) -> Self {
        Self { params }
    }

    pub fn params(&self) -> HashParams {
        self.params
    }

    /// The base64 text for `provider_metadata.password`, under a fresh random salt.
    pub fn hash(&self, password: &[u8]) -> Result<String, HashError> {
        let mut salt = [0u8; SALT_LEN];
        aws_lc_rs::rand::fill(&mut salt).map_err(|_| HashError::Random)?;
        self.hash_with_salt(password, &salt)
    }

    /// As `hash`, with the salt given: for tests and reproducible vectors only, never for storage.
    pub fn hash_with_salt(&self, password: &[u8], salt: &[u8; SALT_LEN]) -> Result<String, HashError> {
        let mut key = [0u8; KEY_LEN];
        key[0..6].copy_from_slice(MAGIC);
        key[6] = VERSION;
        key[7] = self.params.log_n;
        key[8..12].copy_from_slice(&self.params.r.to_be_bytes());
        key[12..16].copy_from_slice(&self.params.p.to_be_bytes());
        key[16..48].copy_from_slice(salt);
        let checksum = digest::digest(&digest::SHA256, &key[0..48]);
        key[48..64].copy_from_slice(&checksum.as_ref()[..16]);

        // Built per hash, not held: `HashParams::new` already had the crate accept these values, and
        // keeping its `Params` would make `new` (and `Default`) fallible for a refusal that can't come.
        let params =
            scrypt::Params::new(self.params.log_n, self.params.r, self.params.p).map_err(|_| HashError::Scrypt)?;
        let mut derived = [0u8; DERIVED_LEN];
        scrypt::scrypt(password, salt, &params, &mut derived).map_err(|_| HashError::Scrypt)?;
        // scrypt-kdf's comment says "1st 32 bytes" but its code keys with `hmacKey.slice(32)`.
        let mac_key = hmac::Key::new(hmac::HMAC_SHA256, &derived[32..]);
        let tag = hmac::sign(&mac_key, &key[0..64]);
        key[64..96].copy_from_slice(tag.as_ref());

        Ok(STANDARD.encode(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fast parameters for the tests that only check structure; scrypt-kdf accepts them too.
    fn quick() -> PasswordHasher {
        PasswordHasher::new(HashParams::new(10, 8, 1).unwrap())
    }

    /// scrypt-kdf's `verify`, rewritten: what Medusa runs at log-in.
    fn verify(hash_b64: &str, password: &[u8]) -> bool {
        let Ok(key) = STANDARD.decode(hash_b64) else { return false };
        let Ok(key) = <[u8; KEY_LEN]>::try_from(key) else { return false };
        if &key[0..6] != MAGIC || key[6] != VERSION {
            return false;
        }
        if digest::digest(&digest::SHA256, &key[0..48]).as_ref()[..16] != key[48..64] {
            return false;
        }
        let r = u32::from_be_bytes(key[8..12].try_into().unwrap());
        let p = u32::from_be_bytes(key[12..16].try_into().unwrap());
        let Ok(params) = scrypt::Params::new(key[7], r, p) else { return false };
        let mut derived = [0u8; DERIVED_LEN];
        scrypt::scrypt(password, &key[16..48], &params, &mut derived).unwrap();
        hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, &derived[32..]), &key[0..64], &key[64..96]).is_ok()
    }

    #[test]
    fn the_hash_has_scrypt_kdfs_layout() {
        let salt: [u8; SALT_LEN] = std::array::from_fn(|i| i as u8 * 7);
        let hashed = quick().hash_with_salt(b"hunter2", &salt).unwrap();
        let key = STANDARD.decode(&hashed).unwrap();

        assert_eq!(key.len(), KEY_LEN);
        assert_eq!(&key[0..6], b"scrypt");
        assert_eq!(key[6], 0, "version");
        assert_eq!(key[7], 10, "logN");
        assert_eq!(key[8..12], 8u32.to_be_bytes(), "r, big-endian");
        assert_eq!(key[12..16], 1u32.to_be_bytes(), "p, big-endian");
        assert_eq!(key[16..48], salt);
        assert_eq!(key[48..64], digest::digest(&digest::SHA256, &key[0..48]).as_ref()[..16]);

        let mut derived = [0u8; DERIVED_LEN];
        scrypt::scrypt(b"hunter2", &salt, &scrypt::Params::new(10, 8, 1).unwrap(), &mut derived).unwrap();
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &derived[32..]), &key[0..64]);
        assert_eq!(key[64..96], *tag.as_ref());
    }

    #[test]
    fn the_text_is_padded_standard_base64_like_nodes_buffer() {
        let hashed = quick().hash(b"x").unwrap();
        // 96 bytes make 128 characters with no padding needed; '+' and '/' rather than '-' and '_'.
        assert_eq!(hashed.len(), 128);
        assert!(hashed.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/'), "{hashed}");
    }

    #[test]
    fn each_hash_draws_a_new_salt() {
        let hasher = quick();
        let (first, second) = (hasher.hash(b"same").unwrap(), hasher.hash(b"same").unwrap());
        assert_ne!(first, second);
        assert!(verify(&first, b"same") && verify(&second, b"same"));
    }

    /// Made by the real scrypt-kdf 2.0.1 from Medusa 2.21.2's node_modules, Medusa's default params:
    /// NODE_PATH=…/node_modules node -e "require('scrypt-kdf').kdf('correct horse',{logN:15,r:8,p:1})
    ///   .then(k=>console.log(k.toString('base64')))"
    const NODE_HASH: &str = concat!(
        "c2NyeXB0AA8AAAAIAAAAAWKeT4B9Z1ikpINHjMh6tBU1fiqNi/aCI+Fi6f/umJYIIODY4LWLLU/TjIjUZ4Osiz6hLdZn",
        "Wce9oCzGqTENs9lTn9I/H3CRq92M5rfdK+sN",
    );

    #[test]
    fn a_hash_made_by_scrypt_kdf_in_node_verifies_here() {
        assert!(verify(NODE_HASH, b"correct horse"));
        assert!(!verify(NODE_HASH, b"correct horse "));
    }

    /// Salt 00 01 … 1f, logN 10, r 8, p 1, a non-ASCII password: built in Node with crypto.scryptSync
    /// and the layout, then accepted by scrypt-kdf's own verify (prints the base64 and `true`):
    /// NODE_PATH=…/node_modules node -e "const c=require('crypto'),pw='Pässwörd ✓',b=Buffer.alloc(96);
    ///   b.write('scrypt');b[7]=10;b.writeUInt32BE(8,8);b.writeUInt32BE(1,12);
    ///   for(let i=0;i<32;i++)b[16+i]=i;
    ///   c.createHash('sha256').update(b.subarray(0,48)).digest().copy(b,48,0,16);
    ///   const k=c.scryptSync(pw,b.subarray(16,48),64,{N:1024,r:8,p:1});
    ///   c.createHmac('sha256',k.subarray(32)).update(b.subarray(0,64)).digest().copy(b,64);
    ///   const s=b.toString('base64');
    ///   require('scrypt-kdf').verify(Buffer.from(s,'base64'),pw).then(ok=>console.log(s,ok))"
    const OUR_VECTOR: &str = concat!(
        "c2NyeXB0AAoAAAAIAAAAAQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f2kbOtdVzi2/IZeE31Wq1iQX9qfKr",
        "TVGgwSVDYrEqfUml6m+Wj2cxA8+Ug6o3Hrjp",
    );

    #[test]
    fn our_hash_verifies_in_scrypt_kdf() {
        let salt: [u8; SALT_LEN] = std::array::from_fn(|i| i as u8);
        let hashed = quick().hash_with_salt("Pässwörd ✓".as_bytes(), &salt).unwrap();
        assert_eq!(hashed, OUR_VECTOR);
    }

    #[test]
    fn medusas_default_hash_verifies_and_a_wrong_password_does_not() {
        let hasher = PasswordHasher::new(HashParams::default());
        let hashed = hasher.hash(b"correct horse").unwrap();
        assert_eq!(STANDARD.decode(&hashed).unwrap()[7], 15);
        assert!(verify(&hashed, b"correct horse"));
        assert!(!verify(&hashed, b"Correct horse"));
    }

    #[test]
    fn the_default_is_medusas_hash_config_and_needs_32_mib() {
        let params = HashParams::default();
        assert_eq!((params.log_n(), params.r(), params.p()), (15, 8, 1));
        assert_eq!(HashParams::new(15, 8, 1), Ok(params));
        assert_eq!(params.memory_bytes(), 32 * 1024 * 1024);
    }

    #[test]
    fn params_scrypt_kdf_and_node_accept_are_accepted() {
        for (log_n, r, p) in [(1, 1, 1), (10, 8, 1), (15, 1, 1), (17, 8, 1), (20, 8, 1), (14, 8, 4), (16, 2, 3)] {
            let params = HashParams::new(log_n, r, p).unwrap_or_else(|e| panic!("{log_n} {r} {p}: {e}"));
            assert!(scrypt::Params::new(params.log_n(), params.r(), params.p()).is_ok());
        }
        assert_eq!(HashParams::new(20, 8, 1).unwrap().memory_bytes(), MAX_MEMORY_BYTES);
    }

    #[test]
    fn params_scrypt_kdf_refuses_are_refused() {
        use InvalidHashParams::*;
        assert_eq!(HashParams::new(0, 8, 1), Err(LogN(0)));
        assert_eq!(HashParams::new(31, 8, 1), Err(LogN(31)));
        assert_eq!(HashParams::new(15, 0, 1), Err(ZeroR));
        assert_eq!(HashParams::new(15, 8, 0), Err(ZeroP));
        // (2^30 − 1)/r < p; in the scrypt crate r·p would overflow u32 and panic in a debug build.
        assert_eq!(HashParams::new(1, 65_536, 65_536), Err(RTimesP { r: 65_536, p: 65_536 }));
        assert_eq!(HashParams::new(1, 1 << 15, 1 << 15), Err(RTimesP { r: 1 << 15, p: 1 << 15 }));
    }

    #[test]
    fn params_node_cannot_verify_are_refused() {
        use InvalidHashParams::*;
        // Node 20: crypto.scryptSync('x','s',64,{N:2**16,r:1,p:1,maxmem:2**31-1}) throws.
        assert_eq!(HashParams::new(16, 1, 1), Err(LogNAboveBlockSize { log_n: 16, r: 1 }));
        // OpenSSL's 128·r·(N + p + 2) for N = 2, r = 1, p = 2^24: 2^31 + 512 bytes, over 2^31 − 1.
        assert_eq!(HashParams::new(1, 1, 1 << 24), Err(NodeMaxmem { needed: (1 << 31) + 512, max: NODE_MAXMEM }));
        assert!(matches!(HashParams::new(1, 8, 1 << 21), Err(NodeMaxmem { .. })));
    }

    #[test]
    fn params_a_lambda_could_not_run_are_refused() {
        use InvalidHashParams::*;
        assert_eq!(HashParams::new(21, 8, 1), Err(Memory { needed: 2 << 30, max: MAX_MEMORY_BYTES }));
        assert_eq!(HashParams::new(30, 8, 1), Err(Memory { needed: 1 << 40, max: MAX_MEMORY_BYTES }));
        assert_eq!(HashParams::new(20, 8, 5), Err(Work { needed: 5 << 30, max: MAX_WORK_BYTES }));
        assert!(HashParams::new(20, 8, 4).is_ok());
    }

    /// `cargo test --release --lib domain::password -- --ignored --nocapture`
    #[test]
    #[ignore = "timing only"]
    fn time_one_hash_at_medusas_default() {
        let hasher = PasswordHasher::new(HashParams::default());
        let start = std::time::Instant::now();
        let runs = 10;
        for _ in 0..runs {
            std::hint::black_box(hasher.hash(b"correct horse").unwrap());
        }
        println!("one hash at logN 15, r 8, p 1: {:?}", start.elapsed() / runs);
    }
}
