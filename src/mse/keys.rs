//! MSE step 3's hashes and the two RC4 streams ("Message Stream Encryption": HASH is SHA-1,
//! keyA = HASH('keyA', S, SKEY), keyB = HASH('keyB', S, SKEY), the first 1024 bytes of each
//! keystream dropped).
//!
//! Where it sits: `handshake.rs` asks for the sync hash (`req1`), the obfuscated torrent name
//! (`req2` ⊕ `req3`) and a [`Ciphers`] pair once S is known; the ciphers then move into the
//! [`super::EncryptedStream`]. The RC4 itself is the `rc4` crate's.

use super::dh::KEY_LEN;
use crate::encoding::sha1;
use crate::metainfo::InfoHash;
use rc4::{KeyInit, Rc4, StreamCipher};

/// Keystream bytes each RC4 stream drops before its first use: RC4's first bytes leak its key.
pub const DISCARD: usize = 1024;

/// Which side a key belongs to: A dialled, B accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

/// HASH(x, y, …) = SHA-1 of the pieces one after the other.
pub fn hash(pieces: &[&[u8]]) -> [u8; 20] {
    sha1(&pieces.concat())
}

/// HASH('req1', S): A sends it in the clear after PadA so B can find where PadA ends.
pub fn req1(secret: &[u8; KEY_LEN]) -> [u8; 20] {
    hash(&[b"req1", secret])
}

/// HASH('req2', SKEY) ⊕ HASH('req3', S): names the torrent without showing its info hash.
pub fn obfuscated_skey(info_hash: &InfoHash, secret: &[u8; KEY_LEN]) -> [u8; 20] {
    xor20(&req2(info_hash), &req3(secret))
}

/// HASH('req2', SKEY): what B looks up once it has taken HASH('req3', S) back out.
pub fn req2(info_hash: &InfoHash) -> [u8; 20] {
    hash(&[b"req2", &info_hash.0])
}

/// HASH('req3', S).
pub fn req3(secret: &[u8; KEY_LEN]) -> [u8; 20] {
    hash(&[b"req3", secret])
}

pub fn xor20(a: &[u8; 20], b: &[u8; 20]) -> [u8; 20] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// HASH('keyA', S, SKEY) or HASH('keyB', S, SKEY): the RC4 key of what that side sends.
pub fn rc4_key(side: Side, secret: &[u8; KEY_LEN], info_hash: &InfoHash) -> [u8; 20] {
    let label: &[u8] = match side {
        Side::A => b"keyA",
        Side::B => b"keyB",
    };
    hash(&[label, secret, &info_hash.0])
}

/// An RC4 stream keyed with `key`, its first [`DISCARD`] bytes already dropped.
pub fn rc4(key: &[u8; 20]) -> Rc4 {
    // 20 bytes is within RC4's key sizes (1 to 256 bytes), so `new_from_slice` cannot refuse
    // it; the `Err` arm is unreachable, and a fixed key would only make a broken stream.
    let mut cipher = Rc4::new_from_slice(key).unwrap_or_else(|_| Rc4::new(&[0u8; 32].into()));
    cipher.apply_keystream(&mut [0u8; DISCARD]); // [W16.5]
    cipher
}

/// The two RC4 streams of one side: one for what it sends, one for what it receives.
pub struct Ciphers {
    pub send: Rc4,
    pub receive: Rc4,
}

impl Ciphers {
    /// `ours` is the side we are: A sends with keyA and reads with keyB, B the other way round.
    pub fn new(ours: Side, secret: &[u8; KEY_LEN], info_hash: &InfoHash) -> Ciphers {
        let (send, receive) = match ours {
            Side::A => (Side::A, Side::B),
            Side::B => (Side::B, Side::A),
        };
        Ciphers {
            send: rc4(&rc4_key(send, secret, info_hash)),
            receive: rc4(&rc4_key(receive, secret, info_hash)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::to_hex;

    /// Plain RC4 (no bytes dropped) against the published test vectors (RFC 6229 and the
    /// classic "Key"/"Plaintext" pair): the crate is RC4.
    #[test]
    fn rc4_matches_published_vectors() {
        let mut cipher = Rc4::new_from_slice(b"Key").unwrap();
        let mut text = *b"Plaintext";
        cipher.apply_keystream(&mut text);
        assert_eq!(to_hex(&text), "bbf316e8d940af0ad3");
        // RFC 6229, key 0x0102030405 (40 bits): keystream at offsets 0 and 1024 (the first
        // bytes we use after dropping 1024).
        let mut cipher = Rc4::new_from_slice(&[1, 2, 3, 4, 5]).unwrap();
        let mut stream = vec![0u8; 1040];
        cipher.apply_keystream(&mut stream);
        assert_eq!(to_hex(&stream[..16]), "b2396305f03dc027ccc3524a0a1118a8");
        assert_eq!(to_hex(&stream[1024..]), "30abbcc7c20b01609f23ee2d5f6bb7df");
    }

    /// `rc4()` drops exactly 1024 bytes: its first byte is byte 1024 of the plain stream.
    #[test]
    fn the_first_1024_bytes_are_dropped() {
        let key: [u8; 20] = std::array::from_fn(|i| i as u8 * 7);
        let mut plain = Rc4::new_from_slice(&key).unwrap();
        let mut long = vec![0u8; DISCARD + 64];
        plain.apply_keystream(&mut long);
        let mut ours = [0u8; 64];
        rc4(&key).apply_keystream(&mut ours);
        assert_eq!(&ours[..], &long[DISCARD..]);
    }

    /// keyA, keyB, req1, req2 ⊕ req3 and the first keystream bytes for a fixed S and info
    /// hash, against values computed outside Rust (Python's hashlib and a twelve-line RC4):
    /// the labels, their order and the 1024 dropped bytes are the specification's.
    #[test]
    fn keys_follow_the_specification() {
        let secret = [0x5au8; KEY_LEN];
        let info_hash = InfoHash([0x11; 20]);
        let key_a = rc4_key(Side::A, &secret, &info_hash);
        let key_b = rc4_key(Side::B, &secret, &info_hash);
        assert_eq!(to_hex(&key_a), "32d371cfe3e3c84fe3a2700a2536ed6f247157fd");
        assert_eq!(to_hex(&key_b), "60c9c130c1687cf8b25e6fa29eaa40f65f12895e");
        assert_eq!(
            to_hex(&req1(&secret)),
            "9c57c0633da598bb1aa8c7f4c2274397eaa98811"
        );
        assert_eq!(
            to_hex(&obfuscated_skey(&info_hash, &secret)),
            "4e863b0bf52350bb4f45ec56056da236771e88cb"
        );
        // The keystream after the 1024 dropped bytes: what encrypts VC first.
        let mut stream = [0u8; 16];
        rc4(&key_a).apply_keystream(&mut stream);
        assert_eq!(to_hex(&stream), "72e28f305bfa12eb0af9c47198f1d57a");
        let mut stream = [0u8; 16];
        rc4(&key_b).apply_keystream(&mut stream);
        assert_eq!(to_hex(&stream), "7e0a79182b67eba4db7d5fbf7d316240");
    }

    /// What A sends with, B receives with, and the other way round.
    #[test]
    fn the_two_sides_ciphers_pair_up() {
        let secret = [0x5au8; KEY_LEN];
        let info_hash = InfoHash([0x11; 20]);
        let mut a = Ciphers::new(Side::A, &secret, &info_hash);
        let mut b = Ciphers::new(Side::B, &secret, &info_hash);
        let mut there = *b"from A to B";
        a.send.apply_keystream(&mut there);
        assert_ne!(&there, b"from A to B");
        b.receive.apply_keystream(&mut there);
        assert_eq!(&there, b"from A to B");
        let mut back = [0u8; 8];
        b.send.apply_keystream(&mut back);
        a.receive.apply_keystream(&mut back);
        assert_eq!(back, [0u8; 8]);
    }
}
