//! MSE steps 1–2: the Diffie-Hellman exchange that gives both sides the shared secret S
//! ("Message Stream Encryption": P, G = 2, 160-bit private keys, 96-byte public keys).
//!
//! Where it sits: `handshake.rs` makes a [`KeyPair`], sends [`KeyPair::public`], reads the
//! other side's 96 bytes and calls [`KeyPair::shared_secret`]; `keys.rs` turns S into hashes
//! and RC4 keys. The arithmetic is `num-bigint`'s (`docs/dependencies.md` says why).

use super::MseError;
use crate::encoding::to_hex;
use num_bigint::BigUint;
use std::sync::OnceLock;

/// Bytes of a public key or of S: 768 bits, big-endian, zeros in front when shorter.
pub const KEY_LEN: usize = 96;

/// The specification's 768-bit prime P, in hex.
const PRIME_HEX: &str = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
                         020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437\
                         4FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563";

/// P as a number, parsed once.
fn prime() -> &'static BigUint {
    static PRIME: OnceLock<BigUint> = OnceLock::new();
    PRIME.get_or_init(|| {
        // A constant of this file, checked by the unit test `the_prime_is_768_bits`: it parses.
        BigUint::parse_bytes(PRIME_HEX.as_bytes(), 16).expect("PRIME_HEX is hex")
    })
}

/// Our side of the exchange: a private X and the public Y = G^X mod P.
pub struct KeyPair {
    private: BigUint,
    public: [u8; KEY_LEN],
}

impl KeyPair {
    /// A fresh key pair from 160 unpredictable bits.
    pub fn generate() -> KeyPair {
        KeyPair::from_private(&crate::encoding::unpredictable_20())
    }

    /// The key pair for a given private X (tests pin X to get known numbers).
    pub fn from_private(private: &[u8]) -> KeyPair {
        let private = BigUint::from_bytes_be(private);
        let public = BigUint::from(2u32).modpow(&private, prime()); // Y = G^X mod P [W16.1]
        KeyPair {
            public: to_key_bytes(&public),
            private,
        }
    }

    /// The 96 bytes we send.
    pub fn public(&self) -> &[u8; KEY_LEN] {
        &self.public
    }

    /// S = Y^X mod P from the other side's 96 bytes, refusing keys that are not keys.
    pub fn shared_secret(&self, theirs: &[u8; KEY_LEN]) -> Result<[u8; KEY_LEN], MseError> {
        let y = BigUint::from_bytes_be(theirs);
        let p = prime();
        // 0 and 1 give S = 0 or 1, P − 1 gives ±1: a secret anyone could guess, so a peer
        // sending one is broken or hostile. P and above are not numbers mod P at all.
        let one = BigUint::from(1u32);
        if y <= one || y >= p - &one {
            return Err(MseError::BadPublicKey(to_hex(&theirs[..8])));
        }
        Ok(to_key_bytes(&y.modpow(&self.private, p))) // S, the same on both sides [W16.2]
    }
}

/// A number below P as exactly 96 big-endian bytes.
fn to_key_bytes(n: &BigUint) -> [u8; KEY_LEN] {
    let bytes = n.to_bytes_be();
    let mut out = [0u8; KEY_LEN];
    // Every number here is reduced mod P (< 2^768), so it fits in 96 bytes; the zeros in
    // front stay when it is shorter (the specification pads on the left).
    let skip = bytes.len().saturating_sub(KEY_LEN);
    let bytes = &bytes[skip..];
    out[KEY_LEN - bytes.len()..].copy_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prime_is_768_bits() {
        assert_eq!(prime().bits(), 768);
        assert_eq!(to_key_bytes(prime()).len(), KEY_LEN);
    }

    #[test]
    fn both_sides_reach_the_same_secret() {
        let a = KeyPair::generate();
        let b = KeyPair::generate();
        assert_ne!(a.public(), b.public(), "fresh keys differ");
        let s_a = a.shared_secret(b.public()).unwrap();
        let s_b = b.shared_secret(a.public()).unwrap();
        assert_eq!(s_a, s_b);
    }

    #[test]
    fn small_private_keys_give_known_public_keys() {
        // 2^3 = 8, and 2^10 = 1024: short numbers are padded on the left to 96 bytes.
        let pair = KeyPair::from_private(&[3]);
        let mut eight = [0u8; KEY_LEN];
        eight[KEY_LEN - 1] = 8;
        assert_eq!(pair.public(), &eight);
        let pair = KeyPair::from_private(&[0x0a]);
        assert_eq!(&pair.public()[KEY_LEN - 2..], &[4, 0]);
        // S = 8^10 = 2^30 with X = 10.
        assert_eq!(
            &pair.shared_secret(&eight).unwrap()[KEY_LEN - 4..],
            &[0x40, 0, 0, 0]
        );
    }

    #[test]
    fn keys_that_are_not_keys_are_refused() {
        let pair = KeyPair::generate();
        let p = to_key_bytes(prime());
        let p_minus_one = to_key_bytes(&(prime() - BigUint::from(1u32)));
        let mut one = [0u8; KEY_LEN];
        one[KEY_LEN - 1] = 1;
        for bad in [[0u8; KEY_LEN], one, p_minus_one, p, [0xff; KEY_LEN]] {
            assert!(
                matches!(pair.shared_secret(&bad), Err(MseError::BadPublicKey(_))),
                "{}",
                to_hex(&bad)
            );
        }
        let mut two = [0u8; KEY_LEN];
        two[KEY_LEN - 1] = 2;
        assert!(pair.shared_secret(&two).is_ok(), "2 is G itself: a key");
    }
}
